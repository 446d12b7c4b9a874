package org.uchroot.engine;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Unpacks a rootfs tarball, with the caller's subordinate ids when unprivileged. */
final class Unpacker {

  private Unpacker() {}

  /**
   * Unpacks {@code tarball} into the existing directory {@code into}, without ./dev (device nodes
   * cannot be made unprivileged; the sandbox binds the host's), and creates {@code normalUser}.
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
  }
}
