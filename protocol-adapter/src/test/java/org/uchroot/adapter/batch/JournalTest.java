package org.uchroot.adapter.batch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JournalTest {

  @TempDir Path dir;

  @Test
  void whatAKilledBatchWroteReadsBackWithoutItsCutLine() throws IOException {
    PlanJob job =
        new PlanJob.Shell(
            "smoke", "true", dir.resolve("x.tar"), Optional.empty(), PlanJob.Retries.NONE);
    JobResult result =
        new JobResult(
            "smoke",
            PlanJob.Kind.shell,
            JobStatus.fail,
            OptionalInt.of(3),
            Duration.ofMillis(1500),
            2,
            List.of(new JobResult.TestVerdict("t", "PASS")),
            "");
    try (Journal journal = Journal.append(dir, 41)) {
      journal.started(job, 1);
      journal.finished(job, result);
    }
    // A kill in the middle of a line.
    Files.writeString(
        dir.resolve(Journal.FILE),
        "{\"event\":\"finished\",\"id\":\"oth",
        StandardOpenOption.APPEND);
    try (Journal journal = Journal.append(dir, 42)) {
      // A second run of the batch, resumed.
    }
    Journal.State state = Journal.read(dir).orElseThrow();
    assertEquals(List.of(41L, 42L), state.pids());
    assertEquals(List.of("smoke"), List.copyOf(state.finished().keySet()));
    assertEquals(result, state.finished().get("smoke").result());
    assertEquals(Journal.inputs(job), state.finished().get("smoke").inputs());
  }

  @Test
  void theInputsChangeWithTheFilesAJobNames() throws IOException {
    Path dsc = Files.writeString(dir.resolve("hello_1.0.dsc"), "Source: hello\n");
    Path tarball = Files.writeString(dir.resolve("bookworm.tar"), "tar");
    PlanJob job =
        new PlanJob.Autopkgtest(
            "hello", dsc.toString(), List.of(), tarball, Optional.empty(), PlanJob.Retries.NONE);
    String before = Journal.inputs(job);
    assertEquals(before, Journal.inputs(job));
    Files.writeString(dsc, "Source: hello\nVersion: 1.1\n", StandardCharsets.UTF_8);
    Files.setLastModifiedTime(dsc, FileTime.fromMillis(1_000_000));
    assertNotEquals(before, Journal.inputs(job));
    PlanJob other =
        new PlanJob.Autopkgtest(
            "hello",
            dsc.toString(),
            List.of("-U"),
            tarball,
            Optional.empty(),
            PlanJob.Retries.NONE);
    assertNotEquals(Journal.inputs(job), Journal.inputs(other));
  }

  @Test
  void noJournalIsNothingToResume() throws IOException {
    assertEquals(Optional.empty(), Journal.read(dir));
  }
}
