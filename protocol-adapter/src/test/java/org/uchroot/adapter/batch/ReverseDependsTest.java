package org.uchroot.adapter.batch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ReverseDependsTest {

  private static final String SOURCES =
      """
      Package: libfoo
      Binary: libfoo1,
       libfoo-dev
      Version: 1.0-1
      Testsuite: autopkgtest

      Package: app
      Binary: app
      Testsuite: autopkgtest

      Package: other
      Binary: other
      Testsuite: autopkgtest
      Testsuite-Triggers: libfoo-dev, python3

      Package: untested
      Binary: untested

      Package: unrelated
      Binary: unrelated
      Testsuite: autopkgtest
      """;

  private static final String PACKAGES =
      """
      Package: libfoo1
      Source: libfoo (1.0-1)
      Depends: libc6 (>= 2.36)

      Package: app
      Depends: libc6 (>= 2.36), libfoo1:any (>= 1.0) | libfoo-alt
      Description: an app
       whose description names libfoo-dev

      Package: untested
      Pre-Depends: libfoo1

      Package: unrelated
      Depends: libbar [amd64]
      """;

  private static ReverseDepends read(String changed) {
    ReverseDepends found = new ReverseDepends(changed);
    byte[] indices = (SOURCES + "\n" + PACKAGES).getBytes(StandardCharsets.UTF_8);
    // In pieces, as a pipe gives them.
    for (int i = 0; i < indices.length; i += 7) {
      found.write(indices, i, Math.min(7, indices.length - i));
    }
    found.close();
    return found;
  }

  @Test
  void aSourcesReverseDependenciesAreItselfItsDependersAndItsTriggers() {
    ReverseDepends found = read("libfoo");
    assertTrue(found.knowsChanged());
    assertEquals(List.of("app", "libfoo", "other"), found.sources());
  }

  @Test
  void aBinarysAreItsSourceAndWhatDependsOnIt() {
    assertEquals(List.of("app", "libfoo"), read("libfoo1").sources());
  }

  @Test
  void anUnknownPackageIsSaidSo() {
    ReverseDepends found = read("nothing");
    assertFalse(found.knowsChanged());
    assertEquals(List.of(), found.sources());
  }

  @Test
  void theWrittenPlanReadsBackAsAutopkgtestJobsByName(@TempDir Path dir) throws Exception {
    Path plan = dir.resolve("reverse-depends-libfoo.yaml");
    ReverseDepends.writePlan(plan, "libfoo", Path.of("/srv/bookworm.tar"), List.of("app", "other"));
    Plan read =
        PlanReader.read(
            plan, new PlanReader.CommandLine(Optional.empty(), Optional.empty(), Optional.empty()));
    assertEquals(List.of("app", "other"), read.jobs().stream().map(PlanJob::id).toList());
    PlanJob.Autopkgtest app = (PlanJob.Autopkgtest) read.jobs().get(0);
    assertEquals("app", app.source());
    assertEquals(Path.of("/srv/bookworm.tar"), app.tarball());
    assertTrue(app.options().contains("--apt-upgrade"), app.options().toString());
    assertTrue(Files.readString(plan).startsWith("# Sources with tests that depend on libfoo"));
  }
}
