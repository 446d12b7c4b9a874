package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.LeakCheck;

/**
 * Runs the real autopkgtest on a tiny source package against the server under test (see {@link
 * E2e#server()}) and the Debian buildd tarball.
 */
@Tag("e2e")
class AutopkgtestRunnerE2ETest {

  private static final String SMOKE_MARKER = "uchroot-e2e smoke: marker read back";

  @RegisterExtension final LeakCheck leaks = new LeakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void runsTests(E2e.Caller caller) throws IOException {
    runAutopkgtest(tempDir, caller.user(), leaks, Map.of());
  }

  /**
   * Runs the smoke package's tests with autopkgtest in {@code tempDir} as {@code user} (null:
   * root), with {@code extra} in autopkgtest's environment, and checks the verdicts.
   */
  static void runAutopkgtest(Path tempDir, String user, LeakCheck leaks, Map<String, String> extra)
      throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("autopkgtest", "runuser");
    String server = E2e.server();
    Path tarball = E2e.debianTarball();

    Path work = tempDir.resolve("work");
    Path src = work.resolve("uchroot-smoke");
    Path tmp = work.resolve("tmp");
    Path out = work.resolve("out");
    writeSourcePackage(src);
    Files.createDirectories(tmp);
    if (user != null) {
      // @TempDir is private to root; the test user only needs to pass through it.
      Files.setPosixFilePermissions(tempDir, PosixFilePermissions.fromString("rwx--x--x"));
      E2e.chownTree(work, user);
    }
    leaks.watch(tmp);

    Map<String, String> env = leaks.tag(E2e.childEnvironment(tmp));
    env.putAll(extra);
    String who = user == null ? "root" : user;
    E2e.Result r =
        E2e.run(
            "autopkgtest-" + server + "-" + who,
            user,
            work,
            env,
            Duration.ofMinutes(10),
            List.of(
                "autopkgtest",
                "--no-built-binaries",
                "--output-dir=" + out,
                src + "/",
                "--",
                server,
                "-t",
                tarball.toString()));

    assertEquals(0, r.exitCode, "autopkgtest failed\n" + r.describe());
    assertPassed(r, "smoke");
    assertPassed(r, "root-check");
    assertTrue(r.output.contains(SMOKE_MARKER), "smoke test output missing\n" + r.describe());
    String summary = Files.readString(out.resolve("summary"));
    assertTrue(
        Pattern.compile("(?m)^smoke\\s+PASS").matcher(summary).find()
            && Pattern.compile("(?m)^root-check\\s+PASS").matcher(summary).find(),
        "unexpected summary file:\n" + summary);
  }

  private static void assertPassed(E2e.Result r, String test) {
    assertTrue(
        Pattern.compile("(?m)^" + Pattern.quote(test) + "\\s+PASS\\s*$").matcher(r.output).find(),
        "test '" + test + "' not reported as PASS\n" + r.describe());
  }

  /** A native source package whose tests need nothing installed. */
  static void writeSourcePackage(Path src) throws IOException {
    E2e.write(
        src.resolve("debian/control"),
        """
                Source: uchroot-smoke
                Section: misc
                Priority: optional
                Maintainer: uchroot tests <uchroot-tests@example.org>
                Standards-Version: 4.6.2
                Rules-Requires-Root: no

                Package: uchroot-smoke
                Architecture: all
                Description: autopkgtest smoke package for uchroot
                 Only its tests matter.
                """);
    E2e.write(
        src.resolve("debian/changelog"),
        """
                uchroot-smoke (1.0) bookworm; urgency=medium

                  * Test package.

                 -- uchroot tests <uchroot-tests@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
                """);
    E2e.write(src.resolve("debian/source/format"), "3.0 (native)\n");
    E2e.writeExecutable(
        src.resolve("debian/rules"),
        """
                #!/usr/bin/make -f
                build build-arch build-indep binary binary-arch binary-indep clean:
                """);
    // Empty Depends: the tests use only what the testbed has, so no apt
    // index (and no network) is needed.
    E2e.write(
        src.resolve("debian/tests/control"),
        """
                Tests: smoke
                Depends:

                Tests: root-check
                Depends:
                Restrictions: needs-root
                """);
    E2e.writeExecutable(
        src.resolve("debian/tests/smoke"),
        """
                #!/bin/sh
                set -eu
                test -d "$AUTOPKGTEST_TMP"
                echo "written by smoke" > "$AUTOPKGTEST_TMP/marker"
                test "$(cat "$AUTOPKGTEST_TMP/marker")" = "written by smoke"
                echo "%s"
                echo "smoke ran as uid $(id -u)"
                """
            .formatted(SMOKE_MARKER));
    E2e.writeExecutable(
        src.resolve("debian/tests/root-check"),
        """
                #!/bin/sh
                set -eu
                uid=$(id -u)
                echo "root-check runs as uid $uid"
                test "$uid" = 0
                """);
  }
}
