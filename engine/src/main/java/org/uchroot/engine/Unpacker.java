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
   * The job server in {@code libexecDir} then makes the mount points and links of /dev that it
   * makes in a testbed, so that an overlay testbed over this tree finds them in its base rather
   * than copying them up at each open. Blocks.
   */
  static void unpack(
      IdMapping mapping, Path libexecDir, Path tarball, Path into, String normalUser) {
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
                + "\"$4\" --dev-skeleton \"$1/dev\"\n",
            "uchroot-unpack",
            into.toString(),
            tarball.toAbsolutePath().toString(),
            normalUser,
            libexecDir.resolve("uchroot-jobd").toString()));
    HelperProcess.run("unpacking " + tarball, argv);
  }
}
