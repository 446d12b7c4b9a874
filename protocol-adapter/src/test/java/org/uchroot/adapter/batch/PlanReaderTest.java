package org.uchroot.adapter.batch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PlanReaderTest {

  @TempDir Path dir;

  private static final PlanReader.CommandLine NOTHING =
      new PlanReader.CommandLine(Optional.empty(), Optional.empty(), Optional.empty());

  private Plan read(String name, String text, PlanReader.CommandLine commandLine)
      throws IOException {
    return PlanReader.read(Files.writeString(dir.resolve(name), text), commandLine);
  }

  private String refusal(String text) {
    Path file = dir.resolve("plan.yaml");
    PlanReader.PlanException e =
        assertThrows(
            PlanReader.PlanException.class,
            () -> PlanReader.read(Files.writeString(file, text), NOTHING));
    assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
    return e.getMessage().substring(file.toString().length() + 2);
  }

  @Test
  void theDocumentedPlanReadsAsItSays() throws IOException {
    Plan plan =
        read(
            "hello.yaml",
            """
            defaults: {tarball: bookworm.tar, jobs: 4, timeout: 1h, retries: {tmpfail: 2, backoff: 30s}}
            jobs:
              - {id: hello-tests, autopkgtest: hello_2.10-3.dsc, options: [-U]}
              - {id: hello-build, sbuild: hello_2.10-3.dsc, dist: bookworm, tarball: buildd.tar}
              - {id: smoke, shell: "apt-get -s install hello"}
            """,
            NOTHING);
    PlanJob.Retries retries = new PlanJob.Retries(2, Duration.ofSeconds(30));
    Optional<Duration> hour = Optional.of(Duration.ofHours(1));
    assertEquals(
        new Plan(
            "hello",
            4,
            List.of(
                new PlanJob.Autopkgtest(
                    "hello-tests",
                    dir.resolve("hello_2.10-3.dsc").toString(),
                    List.of("-U"),
                    dir.resolve("bookworm.tar"),
                    hour,
                    retries),
                new PlanJob.Sbuild(
                    "hello-build",
                    dir.resolve("hello_2.10-3.dsc").toString(),
                    "bookworm",
                    List.of(),
                    dir.resolve("buildd.tar"),
                    hour,
                    retries),
                new PlanJob.Shell(
                    "smoke",
                    "apt-get -s install hello",
                    dir.resolve("bookworm.tar"),
                    hour,
                    retries))),
        plan);
  }

  @Test
  void aSourceNameStaysANameAndAPackageVersionTooForSbuild() throws IOException {
    Plan plan =
        read(
            "names.yml",
            """
            defaults: {tarball: /srv/bookworm.tar, dist: unstable}
            jobs:
              - {id: a, autopkgtest: hello}
              - {id: b, sbuild: hello_2.10-3}
              - {id: c, autopkgtest: ../src/hello.changes}
            """,
            NOTHING);
    assertEquals("hello", ((PlanJob.Autopkgtest) plan.jobs().get(0)).source());
    assertEquals("hello_2.10-3", ((PlanJob.Sbuild) plan.jobs().get(1)).source());
    assertEquals("unstable", ((PlanJob.Sbuild) plan.jobs().get(1)).dist());
    assertEquals(
        dir.resolve("../src/hello.changes").normalize().toString(),
        ((PlanJob.Autopkgtest) plan.jobs().get(2)).source());
  }

  @Test
  void theCommandLineChoosesOverThePlansDefaultsButNotOverAJobsOwn() throws IOException {
    Path given = Path.of("/given.tar");
    Plan plan =
        read(
            "p.yaml",
            """
            defaults: {tarball: default.tar, jobs: 4}
            jobs:
              - {id: own, shell: "true", tarball: own.tar}
              - {id: other, shell: "true"}
            """,
            new PlanReader.CommandLine(
                Optional.of(2), Optional.of(given), Optional.of(Path.of("/found.tar"))));
    assertEquals(2, plan.parallelism());
    assertEquals(dir.resolve("own.tar"), plan.jobs().get(0).tarball());
    assertEquals(given, plan.jobs().get(1).tarball());
  }

  @Test
  void aFileOfCommandLinesIsShellJobsNamedByTheirLines() throws IOException {
    Path found = Path.of("/found.tar");
    Plan plan =
        read(
            "commands.txt",
            "echo a\n\n# not this\n  echo b  \n",
            new PlanReader.CommandLine(Optional.empty(), Optional.empty(), Optional.of(found)));
    assertEquals(
        List.of(
            new PlanJob.Shell("line-1", "echo a", found, Optional.empty(), PlanJob.Retries.NONE),
            new PlanJob.Shell("line-4", "echo b", found, Optional.empty(), PlanJob.Retries.NONE)),
        plan.jobs());
    assertEquals("commands", plan.name());
  }

  @Test
  void whatCannotRunIsRefusedWithWhereAndWhy() {
    assertEquals(
        "jobs[0] (a): unknown key 'tarbal'; known: autopkgtest, dist, id, options, retries, sbuild,"
            + " shell, tarball, timeout",
        refusal("jobs:\n  - {id: a, shell: 'true', tarbal: x.tar}\n"));
    assertEquals(
        "jobs[1]: another job has the id a",
        refusal(
            "defaults: {tarball: x.tar}\njobs:\n  - {id: a, shell: 'true'}\n  - {id: a, shell: 'true'}\n"));
    assertEquals(
        "jobs[0] (a): a job has exactly one of autopkgtest, sbuild, shell; it has [autopkgtest, shell]",
        refusal("jobs:\n  - {id: a, autopkgtest: hello, shell: 'true'}\n"));
    assertEquals(
        "jobs[0] (b): an sbuild job needs a dist (or defaults.dist), such as bookworm or unstable",
        refusal("defaults: {tarball: x.tar}\njobs:\n  - {id: b, sbuild: hello_1.0.dsc}\n"));
    assertEquals(
        "jobs[0] (c).timeout: 'soon' is not a duration (for example 5s, 500ms, 2m)",
        refusal("defaults: {tarball: x.tar}\njobs:\n  - {id: c, shell: 'true', timeout: soon}\n"));
    assertEquals(
        "jobs[0] (d): no tarball: give the job a tarball, the plan defaults.tarball, or -t",
        refusal("jobs:\n  - {id: d, shell: 'true'}\n"));
    assertEquals(
        "jobs[0]: the id '../x' names a directory: letters, digits, '.', '_', '+' and '-', not"
            + " starting with '.', '_', '+' or '-'",
        refusal("jobs:\n  - {id: ../x, shell: 'true'}\n"));
    assertEquals(
        "jobs is a list of jobs, each with an id and one of autopkgtest, sbuild, shell",
        refusal("defaults: {tarball: x.tar}\n"));
    assertTrue(refusal("jobs: [\n").startsWith("line "), refusal("jobs: [\n"));
  }

  @Test
  void aMissingPlanIsOneLine() {
    Path missing = dir.resolve("nowhere.yaml");
    PlanReader.PlanException e =
        assertThrows(PlanReader.PlanException.class, () -> PlanReader.read(missing, NOTHING));
    assertEquals(missing + ": no such file", e.getMessage());
  }
}
