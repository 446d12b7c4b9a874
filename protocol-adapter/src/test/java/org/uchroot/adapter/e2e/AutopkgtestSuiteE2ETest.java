package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * autopkgtest's own test suite, its {@code UnshareRunner} tests, run against the server under test
 * (see {@link E2e#server()}) by {@code protocol-adapter/src/test/compat/autopkgtest-suite}: every
 * test that passed with autopkgtest-virt-unshare, as recorded in {@code unshare-results.tsv}, must
 * pass. A skip is not a pass. The source of the installed autopkgtest comes from {@code apt-get
 * source}, so deb-src entries must be enabled.
 */
@Tag("e2e")
class AutopkgtestSuiteE2ETest {

  private static final Duration TIME_LIMIT = Duration.ofMinutes(30);
  private static final String PYTHON = "/usr/bin/python3";

  @TempDir Path tempDir;

  @Test
  void passesEveryTestTheReferencePasses() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("apt-get", "dpkg-source", "dpkg-buildpackage", "autopkgtest");
    String server = E2e.server();
    Path compat = E2e.projectRoot().resolve("protocol-adapter/src/test/compat");
    Path reference = compat.resolve("unshare-results.tsv");
    Path results = E2e.logDir().resolve("autopkgtest-suite-" + server + ".tsv");
    Files.deleteIfExists(results);
    Path tmp = Files.createDirectories(tempDir.resolve("tmp"));

    // Debian's python3, as autopkgtest's: another one on PATH may lack its modules.
    List<String> command =
        new ArrayList<>(
            List.of(
                PYTHON,
                compat.resolve("autopkgtest-suite").toString(),
                "--tarball",
                E2e.debianTarball().toString(),
                "--output",
                results.toString(),
                "--logs",
                E2e.logDir().resolve("autopkgtest-suite-" + server).toString()));
    if (server.equals(E2e.DEFAULT_SERVER)) {
      command.addAll(
          List.of(
              "--server",
              E2e.distributionDir().resolve("bin/autopkgtest-virt-uchroot").toString()));
    }
    command.add(server);
    E2e.Result r =
        E2e.run(
            "autopkgtest-suite-" + server,
            null,
            tempDir,
            E2e.childEnvironment(tmp),
            TIME_LIMIT,
            command);
    assertEquals(0, r.exitCode, "autopkgtest-suite failed\n" + r.describe());
    assertTrue(Files.isRegularFile(results), "no results file " + results + "\n" + r.describe());

    // The table of this run, kept with the logs.
    E2e.run(
        "compatibility-table-" + server,
        null,
        tempDir,
        Map.of(),
        Duration.ofMinutes(1),
        List.of(
            PYTHON,
            compat.resolve("compatibility-table").toString(),
            results.toString(),
            reference.toString(),
            E2e.logDir().resolve("compatibility.md").toString()));

    Recorded expected = Recorded.read(reference);
    Recorded actual = Recorded.read(results);
    // The reference holds only for the autopkgtest it was recorded with.
    assertEquals(
        expected.version(),
        actual.version(),
        reference
            + " was recorded with another autopkgtest; record it again"
            + " (autopkgtest-suite --output "
            + reference
            + " unshare)");

    List<String> regressions = new ArrayList<>();
    expected
        .results()
        .forEach(
            (test, result) -> {
              String ours = actual.results().getOrDefault(test, "missing");
              if (result.equals("pass") && !ours.equals("pass")) {
                regressions.add(
                    test
                        + ": "
                        + ours
                        + " (log "
                        + E2e.logDir().resolve("autopkgtest-suite-" + server).resolve(test + ".log")
                        + ")");
              }
            });
    if (!regressions.isEmpty()) {
      fail(
          regressions.size()
              + " test(s) of autopkgtest's suite pass with unshare but not with "
              + server
              + ":\n  "
              + String.join("\n  ", regressions));
    }
  }

  /** A results file: its header line names the autopkgtest version, then "test TAB result". */
  private record Recorded(String version, Map<String, String> results) {
    static Recorded read(Path file) throws IOException {
      String version = "";
      Map<String, String> results = new LinkedHashMap<>();
      for (String line : Files.readAllLines(file)) {
        if (line.startsWith("#")) {
          if (version.isEmpty()) {
            // "# autopkgtest 5.28, UnshareRunner tests, ..."
            String[] words = line.substring(1).trim().split("[ ,]+");
            version = words.length > 1 ? words[1] : "";
          }
        } else if (!line.isBlank()) {
          String[] fields = line.split("\t");
          if (fields.length != 2) {
            fail("malformed line in " + file + ": " + line);
          }
          results.put(fields[0], fields[1]);
        }
      }
      if (results.isEmpty()) {
        fail("no results in " + file);
      }
      return new Recorded(version, results);
    }
  }
}
