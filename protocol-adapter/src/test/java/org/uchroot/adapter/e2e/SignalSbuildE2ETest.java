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
import org.uchroot.engine.LeakCheck;

/**
 * Ctrl+C on the terminal of a real sbuild while the package builds: sbuild aborts the build and
 * cleans up through the testbed (purging the build directory), then closes it; nothing remains.
 *
 * <p>The terminal is a pseudo-terminal made by {@code script}; typing ^C into it makes its line
 * discipline send SIGINT to the foreground process group, exactly as a user's Ctrl+C does.
 */
@Tag("e2e")
class SignalSbuildE2ETest {

  private static final String PACKAGE = "uchroot-slow";
  private static final String VERSION = "1.0";
  private static final Pattern BUILD_RUNNING = Pattern.compile("^uchroot-e2e: build running");
  private static final Pattern ABORTED = Pattern.compile("ABORT: Received INT signal");
  private static final Pattern PURGED = Pattern.compile("^Purging /");

  /** What sbuild prints when the testbed or its server lets it down. */
  private static final List<String> TESTBED_ERRORS =
      List.of(
          "unable to remove build directory",
          "autopkgtest-virt server",
          "autopkgtest-virt quit with exit status",
          "uchroot-exec:",
          "uchroot-enter:",
          "<VirtSubproc>",
          "Chroot setup failed");

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @Test
  void ctrlCDuringABuildLeavesSbuildItsCleanup() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("sbuild", "dpkg-source", "script");
    Path tarball = E2e.debianTarball();
    Path work = SignalFixtures.workDir(tempDir, null);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    Path out = Files.createDirectories(work.resolve("out"));
    Path config = work.resolve("sbuild.conf");
    // sbuild always adds fakeroot to the build dependencies, which a buildd tarball lacks.
    E2e.write(config, "$core_depends = ['build-essential:native'];\n1;\n");
    writeSlowPackage(work.resolve(PACKAGE));
    leaks.watch(work.resolve("tmp"));
    Map<String, String> env = SignalFixtures.environment(work, null, leaks);
    env.put("SBUILD_CONFIG", config.toString());
    env.put("SHELL", "/bin/sh");

    E2e.Result source =
        E2e.run(
            "signal-dpkg-source",
            null,
            work,
            env,
            Duration.ofMinutes(1),
            List.of("dpkg-source", "--build", PACKAGE));
    assertEquals(0, source.exitCode, source.describe());
    Path dsc = work.resolve(PACKAGE + "_" + VERSION + ".dsc");

    // script runs its command through $SHELL -c: exec makes sbuild the terminal's foreground
    // process itself, or a shell that dies of the ^C would be the status script reports.
    String sbuild =
        String.join(
            " ",
            List.of(
                "exec",
                "sbuild",
                "--chroot-mode=autopkgtest",
                // sbuild looks for the server on its own $path setting, not on $PATH.
                "--autopkgtest-virt-server="
                    + E2e.distributionDir().resolve("bin/autopkgtest-virt-uchroot"),
                "'--autopkgtest-virt-server-opts=-t " + tarball + " -u " + rootfs + "'",
                "--no-run-lintian",
                "--no-run-autopkgtest",
                "--no-run-piuparts",
                "--no-apt-update",
                "--no-apt-upgrade",
                "--no-apt-distupgrade",
                "--purge-build=always",
                "--dist=bookworm",
                "--nolog",
                "--build-dir=" + out,
                dsc.toString()));
    try (LiveProcess terminal =
        LiveProcess.start(
            "signal-sbuild-ctrl-c", work, env, List.of("script", "-qfec", sbuild, "/dev/null"))) {
      terminal.awaitOutput(BUILD_RUNNING, Duration.ofMinutes(5));
      assertTrue(
          Files.isDirectory(rootfs),
          "the build runs, but not in " + rootfs + "\n" + terminal.describe());

      long typed = System.nanoTime();
      terminal.type("\u0003");
      int status = terminal.waitFor(Duration.ofMinutes(3));
      SignalFixtures.report(
          "sbuild", "Ctrl+C to the end of sbuild", Duration.ofNanos(System.nanoTime() - typed));
      String log = terminal.output();

      assertTrue(
          ABORTED.matcher(log).find(), "Ctrl+C did not reach sbuild\n" + terminal.describe());
      assertTrue(
          log.lines().anyMatch(l -> PURGED.matcher(l).find()),
          "sbuild did not purge its build directory\n" + terminal.describe());
      for (String error : TESTBED_ERRORS) {
        assertFalse(
            log.contains(error), "sbuild's log has '" + error + "'\n" + terminal.describe());
      }
      // An aborted build fails, but through sbuild's own path, not a crash.
      assertTrue(
          status != 0 && status < 128,
          "sbuild's exit status after Ctrl+C: " + status + "\n" + terminal.describe());
      assertFalse(Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS), rootfs + " survived sbuild");
    }
  }

  /** A native package whose build prints a line, then keeps writing a marker until stopped. */
  static void writeSlowPackage(Path src) throws IOException {
    E2e.write(
        src.resolve("debian/control"),
        """
                Source: uchroot-slow
                Section: misc
                Priority: optional
                Maintainer: uchroot tests <uchroot-tests@example.org>
                Build-Depends:
                Standards-Version: 4.6.2
                Rules-Requires-Root: no

                Package: uchroot-slow
                Architecture: all
                Description: package whose build waits to be interrupted
                 Used by the uchroot end-to-end tests.
                """);
    E2e.write(
        src.resolve("debian/changelog"),
        """
                uchroot-slow (1.0) bookworm; urgency=medium

                  * Test package.

                 -- uchroot tests <uchroot-tests@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
                """);
    E2e.write(src.resolve("debian/source/format"), "3.0 (native)\n");
    E2e.writeExecutable(
        src.resolve("debian/rules"),
        """
                #!/usr/bin/make -f
                build build-indep:
                \t@echo "uchroot-e2e: build running"
                \ti=0; while [ $$i -lt 600 ]; do date > build-marker; sleep 1; i=$$((i+1)); done
                build-arch:
                binary binary-indep: build
                \tfalse
                binary-arch:
                clean:
                \trm -f build-marker
                .PHONY: build build-arch build-indep binary binary-arch binary-indep clean
                """);
  }
}
