package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.LeakCheck;

/**
 * What stops a batch: Ctrl+C on its terminal stops it, cleanly, and a batch killed with SIGKILL
 * resumes without running its finished jobs again; nothing is left either way.
 */
@Tag("e2e")
class BatchSignalsE2ETest {

  private static final Duration LIMIT = Duration.ofSeconds(120);

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void ctrlCStartsNoMoreJobsAndInterruptsTheRunningOnes(E2e.Caller caller) throws Exception {
    E2e.requireRoot();
    E2e.requireCommands("script");
    String user = caller.user();
    Path work = SignalFixtures.workDir(tempDir, user);
    // As a new user found it: seven sleeps, two at a time, and a Ctrl+C.
    E2e.write(work.resolve("sleeps.txt"), "echo running; sleep 30\n".repeat(7));
    if (user != null) {
      E2e.chownTree(work.resolve("sleeps.txt"), user);
    }
    Path results = work.resolve("uchroot-results/sleeps");
    // A terminal that moves the cursor, as a user's does: the live status is drawn on it.
    Map<String, String> env = new LinkedHashMap<>(SignalFixtures.environment(work, user, leaks));
    env.put("TERM", "xterm");
    Process process =
        RunTerminalE2ETest.onATerminal(
            work,
            user,
            env,
            "uchroot batch -t " + SignalFixtures.busyboxTarball() + " -j 2 sleeps.txt");
    try (OutputStream keys = process.getOutputStream()) {
      RunTerminalE2ETest.Screen screen =
          new RunTerminalE2ETest.Screen(process.getInputStream(), LIMIT);
      awaitRunning(results.resolve("line-1/log"));
      awaitRunning(results.resolve("line-2/log"));
      screen.awaitLines("0/7 done: 0 pass, 0 fail, 0 tmpfail; 2 running; ETA --");
      screen.awaitLines("  line-2  shell");
      keys.write(3);
      keys.flush();
      assertTrue(process.waitFor(LIMIT.toSeconds(), TimeUnit.SECONDS), screen.text());
      assertEquals(130, process.exitValue(), screen.text());
      screen.awaitLines("no job starts any more");
    } finally {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }
    JsonNode jobs =
        new ObjectMapper().readTree(results.resolve("results.json").toFile()).get("jobs");
    List<String> seen = new ArrayList<>();
    jobs.forEach(
        job ->
            seen.add(
                job.get("id").asText()
                    + " "
                    + job.get("status").asText()
                    + " "
                    + job.get("attempts").asInt()
                    + " "
                    + job.get("exit_code").asText()));
    assertEquals(
        List.of(
            "line-1 interrupted 1 130",
            "line-2 interrupted 1 130",
            "line-3 interrupted 0 null",
            "line-4 interrupted 0 null",
            "line-5 interrupted 0 null",
            "line-6 interrupted 0 null",
            "line-7 interrupted 0 null"),
        seen);
  }

  @Test
  void ctrlCSendsARunningAutopkgtestSigtermAndItCleansUp() throws Exception {
    E2e.requireRoot();
    E2e.requireCommands("script", "autopkgtest");
    Path work = SignalFixtures.workDir(tempDir, null);
    // A source tree whose one test runs until it is stopped.
    Path tree = work.resolve("sleeper");
    E2e.write(
        tree.resolve("debian/control"),
        "Source: sleeper\nMaintainer: Test <test@example.org>\n\nPackage: sleeper\n"
            + "Architecture: all\nDescription: sleeps\n a test that sleeps\n");
    E2e.write(
        tree.resolve("debian/changelog"),
        "sleeper (1.0) unstable; urgency=medium\n\n  * Test.\n\n"
            + " -- Test <test@example.org>  Thu, 03 Dec 2026 12:00:00 +0000\n");
    E2e.write(tree.resolve("debian/source/format"), "3.0 (native)\n");
    E2e.write(
        tree.resolve("debian/tests/control"),
        "Test-Command: echo test-running; sleep 300\nDepends: dpkg\n");
    E2e.write(
        work.resolve("plan.yaml"),
        "defaults: {tarball: "
            + E2e.debianTarball()
            + "}\njobs:\n  - {id: sleeper, autopkgtest: sleeper/, options: [--no-built-binaries]}\n"
            + "  - {id: queued, shell: 'echo never'}\n");
    Path results = work.resolve("uchroot-results/plan");
    Process process =
        RunTerminalE2ETest.onATerminal(
            work,
            null,
            SignalFixtures.environment(work, null, leaks),
            "uchroot batch -j 1 plan.yaml");
    try (OutputStream keys = process.getOutputStream()) {
      RunTerminalE2ETest.Screen screen =
          new RunTerminalE2ETest.Screen(process.getInputStream(), LIMIT);
      Path log = results.resolve("sleeper/log");
      // Not just "running": autopkgtest's log names the testbed's running kernel first.
      awaitInLog(log, "test-running");
      keys.write(3);
      keys.flush();
      assertTrue(process.waitFor(LIMIT.toSeconds(), TimeUnit.SECONDS), screen.text());
      assertEquals(130, process.exitValue(), screen.text());
      assertTrue(
          Files.readString(log).contains("Received signal 15, cleaning up"),
          "autopkgtest got SIGTERM, not the terminal's SIGINT\n" + Files.readString(log));
    } finally {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }
    JsonNode jobs =
        new ObjectMapper().readTree(results.resolve("results.json").toFile()).get("jobs");
    List<String> seen = new ArrayList<>();
    jobs.forEach(job -> seen.add(job.get("id").asText() + " " + job.get("status").asText()));
    assertEquals(List.of("sleeper interrupted", "queued interrupted"), seen);
  }

  @Test
  void aBatchKilledWithSigkillResumesWithoutRunningItsFinishedJobsAgain() throws Exception {
    E2e.requireRoot();
    Path work = SignalFixtures.workDir(tempDir, null);
    Map<String, String> env = SignalFixtures.environment(work, null, leaks);
    Path plan = work.resolve("plan.yaml");
    String head =
        "defaults: {tarball: "
            + SignalFixtures.busyboxTarball()
            + ", jobs: 3}\njobs:\n"
            + "  - {id: a, shell: 'echo a-done'}\n"
            + "  - {id: b, shell: 'echo b-done'}\n";
    E2e.write(plan, head + "  - {id: c, shell: 'echo c-running; sleep 60'}\n");
    Path results = work.resolve("uchroot-results/plan");
    String uchroot = E2e.distributionDir().resolve("bin/uchroot").toString();
    try (LiveProcess batch =
        LiveProcess.start("batch-killed", work, env, List.of(uchroot, "batch", "plan.yaml"))) {
      awaitRunning(results.resolve("c/log"));
      Await.until(
          "a and b to end",
          LIMIT,
          () ->
              journal(results).contains("\"event\":\"finished\",\"id\":\"a\"")
                  && journal(results).contains("\"event\":\"finished\",\"id\":\"b\""),
          () -> journal(results));
      // The launcher execs the JVM: this is the batch.
      E2e.Result kill =
          E2e.run(
              "kill-batch",
              null,
              work,
              Map.of(),
              LIMIT,
              List.of("kill", "-KILL", Long.toString(batch.pid())));
      assertEquals(0, kill.exitCode, kill.describe());
      assertEquals(137, batch.waitFor(LIMIT), batch.describe());
    }
    String a = Files.readString(results.resolve("a/log"));

    // c ran when the batch died; it runs again, as the plan now says.
    E2e.write(plan, head + "  - {id: c, shell: 'echo c-again'}\n");
    E2e.Result resumed =
        E2e.run(
            "batch-resumed",
            null,
            work,
            env,
            LIMIT,
            List.of(uchroot, "batch", "plan.yaml", "--resume"));
    assertEquals(0, resumed.exitCode, resumed.describe());
    assertTrue(
        resumed.output.contains("left by the batch's earlier run"),
        "the killed batch's testbed is removed\n" + resumed.describe());
    assertFalse(resumed.output.contains("started a "), resumed.describe());
    assertTrue(resumed.output.contains("started c (shell)"), resumed.describe());
    assertEquals(a, Files.readString(results.resolve("a/log")));
    assertTrue(Files.readString(results.resolve("c/log")).contains("c-again"));
    assertTrue(
        Files.readString(results.resolve("c/earlier-run-1/log")).contains("c-running"),
        "the killed run's log is kept");
    JsonNode jobs =
        new ObjectMapper().readTree(results.resolve("results.json").toFile()).get("jobs");
    List<String> statuses = new ArrayList<>();
    jobs.forEach(job -> statuses.add(job.get("id").asText() + " " + job.get("status").asText()));
    assertEquals(List.of("a pass", "b pass", "c pass"), statuses);
  }

  private static void awaitRunning(Path log) {
    awaitInLog(log, "running");
  }

  private static void awaitInLog(Path log, String text) {
    Await.until(
        log + " to say " + text,
        LIMIT,
        () -> {
          try {
            return Files.isRegularFile(log) && Files.readString(log).contains(text);
          } catch (IOException e) {
            return false;
          }
        },
        () -> log.toString());
  }

  private static String journal(Path results) {
    try {
      Path file = results.resolve("journal.jsonl");
      return Files.isRegularFile(file) ? Files.readString(file) : "";
    } catch (IOException e) {
      return "";
    }
  }
}
