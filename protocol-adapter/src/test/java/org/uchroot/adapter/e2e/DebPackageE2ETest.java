package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The .deb the build makes: lintian-clean but for the overrides it ships, and in a clean Debian 12
 * made by mmdebstrap, installed by the README's own command, it serves sbuild and autopkgtest where
 * they look for a virtualisation server, with no change to any PATH. Root there has no subordinate
 * ids, as on a fresh install.
 */
@Tag("e2e")
class DebPackageE2ETest {

  private static final Duration LIMIT = Duration.ofMinutes(20);

  @TempDir Path tempDir;

  @Test
  void thePackageIsLintianClean() throws IOException {
    E2e.requireCommands("lintian");
    E2e.Result lintian =
        E2e.run(
            "lintian",
            null,
            tempDir,
            Map.of(),
            LIMIT,
            List.of("lintian", "--fail-on", "error,warning", builtPackage().toString()));
    assertEquals(0, lintian.exitCode, lintian.describe());
  }

  @Test
  void theReadmeInstallsItAndSbuildAndAutopkgtestFindIt() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("mmdebstrap", "bwrap");
    Path deb = builtPackage();
    Path rootfs = tempDir.resolve("rootfs");
    Path work = Files.createDirectories(tempDir.resolve("work"));
    Files.createDirectories(work.resolve("tmp"));
    Files.copy(
        deb,
        Files.createDirectories(work.resolve("protocol-adapter/target"))
            .resolve(deb.getFileName()));

    E2e.Result made =
        E2e.run(
            "mmdebstrap-deb",
            null,
            tempDir,
            Map.of(),
            LIMIT,
            List.of(
                "mmdebstrap",
                "--variant=apt",
                "--include=sudo,sbuild,autopkgtest,dpkg-dev,man-db",
                // As on an installed system, apt knows the archive's packages.
                "--skip=cleanup/apt/lists",
                "bookworm",
                rootfs.toString()));
    assertEquals(0, made.exitCode, made.describe());

    SbuildE2ETest.writeSourcePackage(work.resolve("uchroot-hello"));
    E2e.write(work.resolve("readme.sh"), readmeCommand("Install it") + "\n");
    E2e.write(
        work.resolve("commands.sh"),
        """
                set -ex
                sh -x /work/readme.sh
                command -v uchroot
                command -v autopkgtest-virt-uchroot
                man -w uchroot autopkgtest-virt-uchroot uchroot-run
                dpkg-source --build uchroot-hello
                # The buildd tarball has no apt lists, so sbuild must not ask for fakeroot; and
                # bookworm's sbuild reads ~/.sbuildrc.
                echo "\\$core_depends = ['build-essential:native'];" > ~/.sbuildrc
                sbuild --chroot-mode=autopkgtest --autopkgtest-virt-server=uchroot \\
                    --autopkgtest-virt-server-opts="-t /srv/bookworm.tar" \\
                    --no-run-lintian --no-run-autopkgtest --no-run-piuparts \\
                    --no-apt-update --no-apt-upgrade --no-apt-distupgrade \\
                    --dist=bookworm --nolog uchroot-hello_1.0.dsc
                dpkg-deb --contents uchroot-hello_1.0_*.deb | grep ./usr/bin/uchroot-hello
                # The buildd tarball has no apt lists: its testbed fetches them to install what
                # the build and the test need.
                autopkgtest --setup-commands="apt-get update" uchroot-hello_1.0.dsc \
                    -- uchroot -t /srv/bookworm.tar
                # By default the frontends above were served by the engine the first one started.
                uchroot engine status
                uchroot engine stop
                """);
    // A root of its own (pivot_root, not chroot: the kernel refuses new user namespaces to a
    // chrooted process), the host's kernel interfaces and name service, the work directory,
    // and the tests' buildd tarball, which has what sbuild needs without a network. The
    // host's /proc itself: a user namespace may mount a proc only where one is fully visible,
    // and bwrap's own has parts covered.
    E2e.Result used =
        E2e.run(
            "deb-in-rootfs",
            null,
            work,
            Map.of(),
            LIMIT,
            List.of(
                "bwrap",
                "--bind",
                rootfs.toString(),
                "/",
                "--cap-add",
                "ALL",
                "--dev-bind",
                "/dev",
                "/dev",
                "--bind",
                "/proc",
                "/proc",
                "--bind",
                "/sys",
                "/sys",
                "--ro-bind",
                "/etc/resolv.conf",
                "/etc/resolv.conf",
                "--bind",
                work.resolve("tmp").toString(),
                "/tmp",
                "--ro-bind",
                E2e.debianTarball().toString(),
                "/srv/bookworm.tar",
                "--bind",
                work.toString(),
                "/work",
                "--chdir",
                "/work",
                "--die-with-parent",
                "--clearenv",
                "--setenv",
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "--setenv",
                "HOME",
                "/root",
                "--setenv",
                "LANG",
                "C.UTF-8",
                "sh",
                "/work/commands.sh"));
    assertEquals(0, used.exitCode, used.describe());
    assertTrue(used.output.contains("/usr/bin/autopkgtest-virt-uchroot"), used.describe());
    assertTrue(
        used.output.contains("uid=0(root)"),
        "the README's command ran nothing\n" + used.describe());
    assertTrue(
        Pattern.compile("(?m)^command1\\s+PASS$").matcher(used.output).find(), used.describe());
    assertTrue(
        Pattern.compile("(?m)^uptime: ").matcher(used.output).find(),
        "no engine served the default\n" + used.describe());
  }

  /** The shell block of README.md that follows the paragraph starting with {@code lead}. */
  private static String readmeCommand(String lead) throws IOException {
    String readme = Files.readString(E2e.projectRoot().resolve("README.md"));
    Matcher block =
        Pattern.compile("(?m)^" + Pattern.quote(lead) + "[^`]*```sh\\n(.*?)\\n```", Pattern.DOTALL)
            .matcher(readme);
    assertTrue(block.find(), "README.md has no command after '" + lead + "'");
    return block.group(1);
  }

  /** The .deb of this build. */
  private static Path builtPackage() throws IOException {
    Path target = E2e.projectRoot().resolve("protocol-adapter/target");
    try (Stream<Path> files = Files.list(target)) {
      List<Path> debs =
          files.filter(p -> p.getFileName().toString().matches("uchroot_.*\\.deb")).toList();
      assertEquals(1, debs.size(), "the build's packages in " + target + ": " + debs);
      return debs.get(0);
    }
  }
}
