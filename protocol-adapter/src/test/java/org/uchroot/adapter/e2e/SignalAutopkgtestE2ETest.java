package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.engine.Host;
import org.uchroot.engine.LeakCheck;

/**
 * SIGINT to the process group of a real autopkgtest run while a test runs. autopkgtest starts its
 * server without a session of its own, so the server gets the SIGINT too (Debian bug #844459 with
 * the reference server): the runner must still end through its own cleanup, with no testbed
 * failure, and nothing may remain.
 */
@Tag("e2e")
class SignalAutopkgtestE2ETest {

  private static final Pattern TEST_RUNNING = Pattern.compile("uchroot-e2e: test running");

  /** What autopkgtest prints when the testbed or its server lets it down. */
  private static final List<String> TESTBED_ERRORS =
      List.of(
          "testbed failure",
          "virt server",
          "virt-server",
          "<VirtSubproc>",
          "uchroot-exec:",
          "uchroot-enter:",
          "Traceback");

  /** autopkgtest leaves its own output FIFO in TMPDIR when a signal ends it: not ours to judge. */
  private static final Pattern RUNNER_LEFTOVERS_EXCLUDED =
      Pattern.compile("(?!autopkgtest-fifo\\.).*");

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @Test
  void sigintToTheRunnersGroupDuringATest() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("autopkgtest", "setsid");
    Path tarball = E2e.debianTarball();
    Path work = SignalFixtures.workDir(tempDir, null);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    Path src = work.resolve("uchroot-slow-test");
    writeSourcePackage(src);
    leaks.watch(work.resolve("tmp"), RUNNER_LEFTOVERS_EXCLUDED);
    Map<String, String> env = SignalFixtures.environment(work, null, leaks);

    try (LiveProcess runner =
        LiveProcess.start(
            "signal-autopkgtest-sigint",
            work,
            env,
            List.of(
                "setsid",
                "autopkgtest",
                "--no-built-binaries",
                "--output-dir=" + work.resolve("out"),
                src + "/",
                "--",
                "uchroot",
                "-t",
                tarball.toString(),
                "-u",
                rootfs.toString()))) {
      runner.awaitOutput(TEST_RUNNING, Duration.ofMinutes(5));
      assertTrue(
          Files.isDirectory(rootfs),
          "the test runs, but not in " + rootfs + "\n" + runner.describe());
      assertEquals(
          runner.pid(),
          processGroupOf(runner.pid()),
          "autopkgtest must lead its own process group");

      long sent = System.nanoTime();
      assertTrue(
          Host.kill(-runner.pid(), VirtServerProcess.SIGINT), "no process group " + runner.pid());
      int status = runner.waitFor(Duration.ofMinutes(2));
      SignalFixtures.report(
          "autopkgtest",
          "SIGINT to the group to the end of autopkgtest",
          Duration.ofNanos(System.nanoTime() - sent));
      System.out.println("[e2e] autopkgtest after SIGINT: exit status " + status);
      // autopkgtest 5.28 handles TERM and QUIT but not INT: it dies of the KeyboardInterrupt
      // without waiting for its server, which sees the end of its input and closes the testbed.
      Await.until(
          "the server of " + rootfs + " to end",
          Duration.ofMinutes(1),
          () -> SignalFixtures.processesWith(rootfs.toString()).isEmpty(),
          runner::describe);
      SignalFixtures.report(
          "autopkgtest",
          "SIGINT to the group to the server's end",
          Duration.ofNanos(System.nanoTime() - sent));
      assertFalse(
          Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS),
          rootfs + " survived autopkgtest\n" + runner.describe());
      String log = runner.output();
      for (String error : TESTBED_ERRORS) {
        assertFalse(
            log.contains(error), "autopkgtest's output has '" + error + "'\n" + runner.describe());
      }
    }
  }

  /**
   * SIGTERM to the runner alone, as {@code timeout} or a service manager sends it: autopkgtest's
   * handler stops the testbed (close, then quit) while the test still runs; the server must end
   * that test and answer, so that the runner's cleanup completes without a testbed error.
   */
  @Test
  void sigtermToTheRunnerDuringATest() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("autopkgtest", "setsid");
    Path tarball = E2e.debianTarball();
    Path work = SignalFixtures.workDir(tempDir, null);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    Path src = work.resolve("uchroot-slow-test");
    writeSourcePackage(src);
    leaks.watch(work.resolve("tmp"), RUNNER_LEFTOVERS_EXCLUDED);
    Map<String, String> env = SignalFixtures.environment(work, null, leaks);

    try (LiveProcess runner =
        LiveProcess.start(
            "signal-autopkgtest-sigterm",
            work,
            env,
            List.of(
                "setsid",
                "autopkgtest",
                "--no-built-binaries",
                "--output-dir=" + work.resolve("out"),
                src + "/",
                "--",
                "uchroot",
                "-t",
                tarball.toString(),
                "-u",
                rootfs.toString()))) {
      runner.awaitOutput(TEST_RUNNING, Duration.ofMinutes(5));

      long sent = System.nanoTime();
      assertTrue(Host.kill(runner.pid(), VirtServerProcess.SIGTERM), "autopkgtest is gone");
      int status = runner.waitFor(Duration.ofMinutes(2));
      SignalFixtures.report(
          "autopkgtest",
          "SIGTERM to the runner to its end",
          Duration.ofNanos(System.nanoTime() - sent));
      // The handler re-raises the signal once the testbed is stopped.
      assertEquals(128 + VirtServerProcess.SIGTERM, status, runner.describe());
      assertTrue(
          runner.printed(Pattern.compile("Received signal 15, cleaning up")), runner.describe());
      Await.until(
          "the server of " + rootfs + " to end",
          Duration.ofMinutes(1),
          () -> SignalFixtures.processesWith(rootfs.toString()).isEmpty(),
          runner::describe);
      assertFalse(
          Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS),
          rootfs + " survived autopkgtest\n" + runner.describe());
      String log = runner.output();
      for (String error : TESTBED_ERRORS) {
        assertFalse(
            log.contains(error), "autopkgtest's output has '" + error + "'\n" + runner.describe());
      }
    }
  }

  private static long processGroupOf(long pid) throws IOException {
    String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
    return Long.parseLong(stat.substring(stat.lastIndexOf(')') + 2).split(" ")[2]);
  }

  /** A native source package with one test that announces itself, writes a marker and waits. */
  static void writeSourcePackage(Path src) throws IOException {
    E2e.write(
        src.resolve("debian/control"),
        """
                Source: uchroot-slow-test
                Section: misc
                Priority: optional
                Maintainer: uchroot tests <uchroot-tests@example.org>
                Standards-Version: 4.6.2
                Rules-Requires-Root: no

                Package: uchroot-slow-test
                Architecture: all
                Description: autopkgtest package whose test waits to be interrupted
                 Only its tests matter.
                """);
    E2e.write(
        src.resolve("debian/changelog"),
        """
                uchroot-slow-test (1.0) bookworm; urgency=medium

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
    E2e.write(
        src.resolve("debian/tests/control"),
        """
                Tests: slow
                Depends:
                """);
    E2e.writeExecutable(
        src.resolve("debian/tests/slow"),
        """
                #!/bin/sh
                set -eu
                echo running > "$AUTOPKGTEST_TMP/marker"
                echo "uchroot-e2e: test running"
                while :; do sleep 1; done
                """);
  }
}
