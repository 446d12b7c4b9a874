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
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.LeakCheck;

/**
 * Builds a small C package with the real sbuild in autopkgtest chroot mode, driving the server
 * under test (see {@link E2e#server()}) on the Debian buildd tarball, without network access.
 */
@Tag("e2e")
class SbuildE2ETest {

  private static final String PACKAGE = "uchroot-hello";
  private static final String VERSION = "1.0";

  @RegisterExtension final LeakCheck leaks = new LeakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void buildsPackage(E2e.Caller caller) throws IOException {
    build(tempDir, caller.user(), leaks, Map.of());
  }

  /**
   * Builds the package with sbuild in {@code tempDir} as {@code user} (null: root), with {@code
   * extra} in sbuild's environment, and checks the result.
   */
  static void build(Path tempDir, String user, LeakCheck leaks, Map<String, String> extra)
      throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("sbuild", "dpkg-source", "dpkg-deb", "runuser");
    String server = E2e.server();
    Path tarball = E2e.debianTarball();
    String arch = E2e.hostArchitecture();

    Path work = tempDir.resolve("work");
    Path tmp = work.resolve("tmp");
    Path out = work.resolve("out");
    Path config = work.resolve("sbuild.conf");
    writeSourcePackage(work.resolve(PACKAGE));
    // sbuild always adds fakeroot to the build dependencies, but a buildd
    // tarball lacks it and without apt lists it cannot be installed.
    // sbuild looks the server up in its own $path setting, not in the environment.
    E2e.write(
        config,
        "$core_depends = ['build-essential:native'];\n"
            + "$path = '"
            + E2e.childPath()
            + "';\n1;\n");
    Files.createDirectories(tmp);
    Files.createDirectories(out);
    if (user != null) {
      // @TempDir is private to root; the test user only needs to pass through it.
      Files.setPosixFilePermissions(tempDir, PosixFilePermissions.fromString("rwx--x--x"));
      E2e.chownTree(work, user);
    }
    leaks.watch(tmp);

    Map<String, String> env = leaks.tag(E2e.childEnvironment(tmp));
    env.putAll(extra);
    env.put("SBUILD_CONFIG", config.toString());
    String who = user == null ? "root" : user;

    E2e.Result source =
        E2e.run(
            "dpkg-source-" + who,
            user,
            work,
            env,
            Duration.ofMinutes(2),
            List.of("dpkg-source", "--build", PACKAGE));
    assertEquals(0, source.exitCode, "dpkg-source failed\n" + source.describe());
    Path dsc = work.resolve(PACKAGE + "_" + VERSION + ".dsc");
    assertTrue(Files.isRegularFile(dsc), "no " + dsc + "\n" + source.describe());

    E2e.Result r =
        E2e.run(
            "sbuild-" + server + "-" + who,
            user,
            work,
            env,
            Duration.ofMinutes(15),
            List.of(
                "sbuild",
                "--chroot-mode=autopkgtest",
                "--autopkgtest-virt-server=" + server,
                "--autopkgtest-virt-server-opts=-t " + tarball,
                "--no-run-lintian",
                "--no-run-autopkgtest",
                "--no-run-piuparts",
                "--no-apt-update",
                "--no-apt-upgrade",
                "--no-apt-distupgrade",
                "--dist=bookworm",
                "--nolog",
                "--build-dir=" + out,
                dsc.toString()));

    assertEquals(0, r.exitCode, "sbuild failed\n" + r.describe());
    Path deb = out.resolve(PACKAGE + "_" + VERSION + "_" + arch + ".deb");
    assertTrue(
        Files.isRegularFile(deb),
        "no " + deb.getFileName() + " in " + out + ", only " + list(out) + "\n" + r.describe());

    E2e.Result contents =
        E2e.run(
            "dpkg-deb-contents-" + who,
            null,
            work,
            Map.of(),
            Duration.ofMinutes(1),
            List.of("dpkg-deb", "--contents", deb.toString()));
    assertEquals(0, contents.exitCode, contents.describe());
    assertTrue(
        contents.output.contains("./usr/bin/uchroot-hello"),
        "the package lacks the program:\n" + contents.output);
  }

  private static List<String> list(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().collect(Collectors.toList());
    }
  }

  /**
   * A native package with a C program whose build needs only what a buildd chroot has: plain make
   * and dpkg-dev, no debhelper.
   */
  static void writeSourcePackage(Path src) throws IOException {
    E2e.write(
        src.resolve("hello.c"),
        """
                #include <stdio.h>

                int main(void)
                {
                    puts("hello from uchroot-hello");
                    return 0;
                }
                """);
    E2e.write(
        src.resolve("Makefile"),
        """
                CC ?= cc
                hello: hello.c
                \t$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $<
                clean:
                \trm -f hello
                .PHONY: clean
                """);
    E2e.write(
        src.resolve("debian/control"),
        """
                Source: uchroot-hello
                Section: misc
                Priority: optional
                Maintainer: uchroot tests <uchroot-tests@example.org>
                Build-Depends:
                Standards-Version: 4.6.2
                Rules-Requires-Root: no

                Package: uchroot-hello
                Architecture: any
                Depends: ${shlibs:Depends}
                Description: tiny C program built by the uchroot end-to-end tests
                 Prints a greeting.
                """);
    E2e.write(
        src.resolve("debian/changelog"),
        """
                uchroot-hello (1.0) bookworm; urgency=medium

                  * Test package.

                 -- uchroot tests <uchroot-tests@example.org>  Mon, 01 Jan 2024 00:00:00 +0000
                """);
    E2e.write(src.resolve("debian/source/format"), "3.0 (native)\n");
    // For autopkgtest: the built program, installed as a test dependency, greets.
    E2e.write(
        src.resolve("debian/tests/control"),
        """
                Test-Command: uchroot-hello | grep -qx 'hello from uchroot-hello'
                Depends: @
                """);
    E2e.writeExecutable(
        src.resolve("debian/rules"),
        """
                #!/usr/bin/make -f
                PKG := uchroot-hello
                DEST := debian/$(PKG)
                DPKG_EXPORT_BUILDFLAGS = 1
                include /usr/share/dpkg/buildflags.mk

                build build-arch:
                \t$(MAKE) hello
                build-indep:
                binary binary-arch: build-arch
                \trm -rf $(DEST)
                \tinstall -d $(DEST)/DEBIAN $(DEST)/usr/bin $(DEST)/usr/share/doc/$(PKG)
                \tinstall -m 0755 hello $(DEST)/usr/bin/$(PKG)
                \tgzip -9n -c debian/changelog > $(DEST)/usr/share/doc/$(PKG)/changelog.gz
                \tdpkg-shlibdeps -Tdebian/$(PKG).substvars $(DEST)/usr/bin/$(PKG)
                \tdpkg-gencontrol -p$(PKG) -P$(DEST) -Tdebian/$(PKG).substvars
                \tdpkg-deb --root-owner-group --build $(DEST) ..
                binary-indep:
                clean:
                \t$(MAKE) clean
                \trm -rf $(DEST) debian/files debian/*.substvars
                .PHONY: build build-arch build-indep binary binary-arch binary-indep clean
                """);
  }
}
