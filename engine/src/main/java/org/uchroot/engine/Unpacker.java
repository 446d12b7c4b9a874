package org.uchroot.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;

/** Unpacks a rootfs tarball, with the caller's subordinate ids when unprivileged. */
final class Unpacker {

  private Unpacker() {}

  /** The device files sandbox.c binds the host's devices on. */
  private static final List<String> DEVICES =
      List.of("null", "zero", "full", "random", "urandom", "tty", "console");

  /** The links sandbox.c makes in /dev, and their targets. */
  private static final Map<String, String> DEV_LINKS =
      Map.of(
          "fd", "/proc/self/fd",
          "stdin", "/proc/self/fd/0",
          "stdout", "/proc/self/fd/1",
          "stderr", "/proc/self/fd/2",
          "ptmx", "/dev/pts/ptmx");

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
                + "useradd --create-home --root \"$1\" \"$3\"\n",
            "uchroot-unpack",
            into.toString(),
            tarball.toAbsolutePath().toString(),
            normalUser));
    HelperProcess.run("unpacking " + tarball, argv);
    makeDevSkeleton(into.resolve("dev"));
  }

  /**
   * /dev as sandbox.c completes it, made here without a process per file: empty device files
   * without permissions (the sandbox binds the host's devices on them), its links and mount points.
   * A /dev that the tarball brought after all (its entries lack the ./ prefix) is left to the
   * sandbox, which never follows its links.
   */
  private static void makeDevSkeleton(Path dev) {
    if (Files.exists(dev, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try {
      Files.createDirectory(dev);
      Files.createDirectory(dev.resolve("pts"));
      Files.createDirectory(dev.resolve("shm"));
      for (String device : DEVICES) {
        Files.setPosixFilePermissions(Files.createFile(dev.resolve(device)), Set.of());
      }
      for (Map.Entry<String, String> link : DEV_LINKS.entrySet()) {
        Files.createSymbolicLink(dev.resolve(link.getKey()), Path.of(link.getValue()));
      }
    } catch (IOException e) {
      throw new UchrootException("cannot prepare " + dev + ": " + e.getMessage(), e);
    }
  }
}
