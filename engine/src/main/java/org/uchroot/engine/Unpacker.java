package org.uchroot.engine;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Unpacks a rootfs tarball, with the caller's subordinate ids when unprivileged. */
final class Unpacker {

  private Unpacker() {}

  /** As sandbox.c makes them: device files without permissions until their bind mounts cover them. */
  private static final String DEV_SKELETON =
      "mkdir -p \"$1/dev/pts\" \"$1/dev/shm\"\n"
          + "cd \"$1/dev\"\n"
          + "touch null zero full random urandom tty console\n"
          + "chmod 000 null zero full random urandom tty console\n"
          + "ln -s /proc/self/fd fd\n"
          + "ln -s /proc/self/fd/0 stdin\n"
          + "ln -s /proc/self/fd/1 stdout\n"
          + "ln -s /proc/self/fd/2 stderr\n"
          + "ln -s /dev/pts/ptmx ptmx\n";

  /**
   * Unpacks {@code tarball} into the existing directory {@code into}, without ./dev (device nodes
   * cannot be made unprivileged; the sandbox binds the host's), and creates {@code normalUser}.
   * The mount points and links of /dev that the sandbox makes are made here already, so that an
   * overlay testbed over this tree finds them in its base rather than copying them at each open.
   * Blocks.
   */
  static void unpack(IdMapping mapping, Path tarball, Path into, String normalUser) {
    List<String> argv = new ArrayList<>();
    if (!mapping.unshareOptions().isEmpty()) {
      argv.add("unshare");
      argv.addAll(mapping.unshareOptions());
      argv.add("--");
    }
    argv.addAll(
        List.of(
            "/bin/sh",
            "-ec",
            "tar --exclude=./dev --directory \"$1\" --extract --file \"$2\"\n"
                + "useradd --create-home --root \"$1\" \"$3\"\n"
                + DEV_SKELETON,
            "uchroot-unpack",
            into.toString(),
            tarball.toAbsolutePath().toString(),
            normalUser));
    HelperProcess.run("unpacking " + tarball, argv);
  }
}
