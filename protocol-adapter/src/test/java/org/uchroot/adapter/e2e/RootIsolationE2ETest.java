package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.engine.LeakCheck;

/**
 * A testbed started by root is never the host's root: its root is a subordinate id, so a process
 * that leaves the chroot (as any program of the testbed's root can) is an unprivileged user of the
 * host; what its tarball holds (setuid files, device nodes) reaches no other user; and root needs
 * no set-up for it. {@code --privileged} keeps the host's ids, for those who need them.
 */
@Tag("e2e")
class RootIsolationE2ETest {

  private static final Duration LIMIT = Duration.ofSeconds(60);

  /** Leaves the chroot from inside: chroot into a subdirectory, climb above it, chroot there. */
  private static final String ESCAPE =
      "mkdir -p /e && perl -e 'chroot \"/e\" or die \"chroot: $!\\n\";"
          + " chdir \"..\" for 1..64; chroot \".\" or die \"chroot: $!\\n\"; %s'";

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @Test
  void aTestbedsRootThatLeavesItsChrootIsAnUnprivilegedUserOfTheHost() throws IOException {
    E2e.requireRoot();
    Path work = SignalFixtures.workDir(tempDir, null);
    // A way up from the testbed for anyone, as /tmp gives.
    for (Path dir : List.of(tempDir, work, work.resolve("tmp"))) {
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
    }
    Path open = Files.writeString(work.resolve("readable-by-all"), "the host's own file\n");
    // The host's secrets: a root-only directory with a root-only file and a root-group file.
    Path secrets = Files.createDirectories(work.resolve("secrets"));
    Files.setPosixFilePermissions(secrets, PosixFilePermissions.fromString("rwx------"));
    Path secret = Files.writeString(secrets.resolve("secret"), "host secret\n");
    Files.setPosixFilePermissions(secret, PosixFilePermissions.fromString("rw-------"));
    Path groupOnly = Files.writeString(work.resolve("group-only"), "root's group\n");
    Files.setPosixFilePermissions(groupOnly, PosixFilePermissions.fromString("rw-r-----"));

    Path testbed = work.resolve("tmp/testbed");
    try (VirtServerProcess server =
        start(
            "isolation",
            work,
            List.of("-t", E2e.debianTarball().toString(), "-u", testbed.toString()))) {
      server.ok("open");
      List<String> exec = server.execProgram();
      String map = run(server, exec, "cat /proc/self/uid_map").strip();
      String[] ids = map.split("\\s+");
      assertEquals("0", ids[0], map);
      assertNotEquals("0", ids[1], "the testbed's root is the host's root: " + map);

      // The testbed's directory, 0700 and root's, stops the climb: the file is not found.
      String readOpen =
          String.format(
              ESCAPE, "open(F, \"<\", \"" + open + "\") or die \"read: $!\\n\"; print <F>");
      VirtServerProcess.Job stopped = server.run("stopped", exec, readOpen, LIMIT);
      assertTrue(stopped.stderr().contains("read: No such file or directory"), stopped.describe());

      // Once it lets others through, the climb reaches the host: a file readable by all is read,
      // and the host's root's files are not.
      Files.setPosixFilePermissions(testbed, PosixFilePermissions.fromString("rwx--x--x"));
      assertEquals("the host's own file\n", run(server, exec, readOpen));

      VirtServerProcess.Job read =
          server.run(
              "read",
              exec,
              String.format(
                  ESCAPE, "open(F, \"<\", \"" + secret + "\") or die \"read: $!\\n\"; print <F>"),
              LIMIT);
      assertNotEquals("exit 0", read.status(), read.describe());
      assertTrue(read.stderr().contains("read: Permission denied"), read.describe());

      VirtServerProcess.Job group =
          server.run(
              "group",
              exec,
              String.format(
                  ESCAPE,
                  "open(F, \"<\", \"" + groupOnly + "\") or die \"read: $!\\n\"; print <F>"),
              LIMIT);
      assertTrue(
          group.stderr().contains("read: Permission denied"),
          "the host's groups went along: " + group.describe());

      VirtServerProcess.Job write =
          server.run(
              "write",
              exec,
              String.format(
                  ESCAPE,
                  "open(F, \">\", \""
                      + secrets.resolve("planted")
                      + "\") or die \"write: $!\\n\"; print F \"x\""),
              LIMIT);
      assertTrue(write.stderr().contains("write: Permission denied"), write.describe());
      assertFalse(Files.exists(secrets.resolve("planted"), LinkOption.NOFOLLOW_LINKS));

      // What root keeps: directories of the base can be renamed (redirect_dir, #836211).
      assertEquals(
          "renamed\n", run(server, exec, "mv /usr/share/doc /usr/share/doc.moved && echo renamed"));
      server.ok("close");
    }
  }

  @Test
  void privilegedKeepsTheHostsIds() throws IOException {
    E2e.requireRoot();
    Path work = SignalFixtures.workDir(tempDir, null);
    try (VirtServerProcess server =
        start(
            "privileged",
            work,
            List.of("--privileged", "-t", SignalFixtures.busyboxTarball().toString()))) {
      server.ok("open");
      String map = run(server, server.execProgram(), "cat /proc/self/uid_map").strip();
      assertEquals(List.of("0", "0", "4294967295"), List.of(map.split("\\s+")));
      server.ok("close");
    }
  }

  /**
   * A fresh Debian install gives root no subordinate ids: a range is picked once, recorded in the
   * state directory, and kept by the next server.
   */
  @Test
  void rootWithoutSubordinateIdsGetsARangePickedAndRecorded() throws IOException {
    E2e.requireRoot();
    Path work = SignalFixtures.workDir(tempDir, null);
    Path empty = Files.writeString(work.resolve("empty"), "");
    // The real files stay as they are: empty ones are bound over them in a mount namespace of
    // the server's own.
    List<String> noSubordinateIds =
        List.of(
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-ec",
            "mount --bind \"$1\" /etc/subuid; mount --bind \"$1\" /etc/subgid; shift; exec \"$@\"",
            "no-subids",
            empty.toString());
    Path record = work.resolve("state/root-ids");
    List<String> maps = new ArrayList<>();
    for (int server = 0; server < 2; server++) {
      try (VirtServerProcess virt =
          VirtServerProcess.start(
              "picked-" + server,
              null,
              work.resolve("group-" + server),
              environment(work),
              List.of("-t", SignalFixtures.busyboxTarball().toString()),
              noSubordinateIds)) {
        virt.ok("open");
        maps.add(run(virt, virt.execProgram(), "cat /proc/self/uid_map").strip());
        virt.ok("close");
      }
      assertTrue(Files.exists(record), "no range was recorded in " + record);
    }
    String[] recorded = Files.readString(record).strip().split(" ");
    String[] map = maps.get(0).split("\\s+");
    assertEquals(List.of("0", recorded[0], recorded[2]), List.of(map), maps.get(0));
    assertNotEquals("0", recorded[0]);
    assertEquals(maps.get(0), maps.get(1), "the second server picked again");
    for (String line : Files.readAllLines(Path.of("/etc/subuid"))) {
      String[] f = line.split(":");
      long start = Long.parseLong(recorded[0]);
      assertTrue(
          start + Long.parseLong(recorded[2]) <= Long.parseLong(f[1])
              || Long.parseLong(f[1]) + Long.parseLong(f[2]) <= start,
          "the picked range overlaps " + line);
    }
  }

  /**
   * A tarball's setuid-root file and device nodes: the cache holds no device node and the setuid
   * file belongs to the testbed's root, not the host's, in a directory no other user may enter. A
   * device node elsewhere than /dev stops the open with the reason and leaves nothing.
   */
  @Test
  void whatATarballHoldsReachesNoOtherUser() throws IOException {
    E2e.requireRoot();
    Path work = SignalFixtures.workDir(tempDir, null);
    Path tarball = hostileTarball(work, "hostile.tar", "dev/kmsg");
    // The bases of the cache are what other users could have reached.
    try (VirtServerProcess server =
        start("hostile", work, List.of("--rootfs-mode", "overlay", "-t", tarball.toString()))) {
      server.ok("open");
      server.ok("close");
    }
    Path cache = work.resolve("cache");
    List<Path> bases;
    try (Stream<Path> files = Files.list(cache)) {
      bases = files.filter(p -> Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)).toList();
    }
    assertEquals(1, bases.size(), bases.toString());
    Path suid = bases.get(0).resolve("bin/suid");
    assertEquals(04755, (int) Files.getAttribute(suid, "unix:mode") & 07777);
    assertNotEquals(
        0, Files.getAttribute(suid, "unix:uid"), "a setuid file of the host's root in the cache");
    assertFalse(Files.exists(bases.get(0).resolve("dev/kmsg"), LinkOption.NOFOLLOW_LINKS));
    E2e.Result devices =
        E2e.run(
            "devices",
            null,
            work,
            Map.of(),
            LIMIT,
            List.of("find", cache.toString(), "-type", "c", "-o", "-type", "b"));
    assertEquals("", devices.output.strip(), "device nodes in the cache");
    E2e.Result other =
        E2e.run(
            "other-user",
            E2e.testUser(),
            Path.of("/"),
            Map.of(),
            LIMIT,
            List.of("stat", "-c", "%a", suid.toString()));
    assertNotEquals(0, other.exitCode, "another user reached " + suid + ": " + other.output);
    assertTrue(other.output.contains("Permission denied"), other.output);

    Path evil = hostileTarball(work, "device.tar", "tmp/evil");
    try (VirtServerProcess server =
        start("device", work, List.of("--rootfs-mode", "overlay", "-t", evil.toString()))) {
      // As the reference: the failure on stderr, and the server ends.
      server.send("open");
      server.awaitServerExit(LIMIT);
      assertTrue(
          server.stderr().contains("tmp/evil: Cannot mknod: Operation not permitted"),
          server.stderr());
    }
    try (Stream<Path> files = Files.list(cache)) {
      assertEquals(
          List.of(),
          files.filter(p -> p.getFileName().toString().contains("partial")).toList(),
          "a failed unpack left its partial base");
    }
  }

  /**
   * The busybox rootfs with a setuid-root program and a character device 1:11 named {@code device}.
   */
  private static Path hostileTarball(Path work, String name, String device) throws IOException {
    Path out = work.resolve(name);
    E2e.Result made =
        E2e.run(
            "make-" + name,
            null,
            work,
            Map.of(),
            LIMIT,
            List.of(
                "python3",
                "-c",
                String.join(
                    "\n",
                    "import os, shutil, sys, tarfile",
                    "shutil.copy(sys.argv[1], sys.argv[2])",
                    "program = os.path.realpath('/bin/sh')",
                    "with tarfile.open(sys.argv[2], 'a') as t:",
                    "    suid = t.gettarinfo(program, 'bin/suid')",
                    "    suid.mode, suid.uid, suid.gid = 0o4755, 0, 0",
                    "    with open(program, 'rb') as f:",
                    "        t.addfile(suid, f)",
                    "    dev = tarfile.TarInfo(sys.argv[3])",
                    "    dev.type, dev.devmajor, dev.devminor, dev.mode = tarfile.CHRTYPE, 1, 11, 0o666",
                    "    t.addfile(dev)"),
                SignalFixtures.busyboxTarball().toString(),
                out.toString(),
                device));
    assertEquals(0, made.exitCode, made.output);
    return out;
  }

  private VirtServerProcess start(String name, Path work, List<String> args) throws IOException {
    return VirtServerProcess.start(
        name, null, work.resolve("group-" + name), environment(work), args);
  }

  /** The test's own state and cache directories, and its leak check's tag. */
  private Map<String, String> environment(Path work) {
    Map<String, String> env = SignalFixtures.environment(work, null, leaks);
    env.put(
        "UCHROOT_JAVA_OPTS",
        env.get("UCHROOT_JAVA_OPTS") + " -Duchroot.cache-dir=" + work.resolve("cache"));
    return env;
  }

  private static String run(VirtServerProcess server, List<String> exec, String script)
      throws IOException {
    VirtServerProcess.Job job = server.run("sh", exec, script, LIMIT);
    assertEquals("exit 0", job.status(), job.describe());
    return job.stdout();
  }
}
