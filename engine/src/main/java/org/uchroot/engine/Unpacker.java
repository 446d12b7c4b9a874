package org.uchroot.engine;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;

/** Unpacks a rootfs tarball as root of a user namespace with the testbed's mapping. */
final class Unpacker {

  private Unpacker() {}

  /**
   * What GNU tar reads each compression with, by the magic bytes it starts with: tar guesses that
   * itself for a file it opens, but not for stdin.
   */
  private static final List<Compression> COMPRESSIONS =
      List.of(
          new Compression(new byte[] {0x1f, (byte) 0x8b}, "--gzip"),
          new Compression(new byte[] {'B', 'Z', 'h'}, "--bzip2"),
          new Compression(new byte[] {(byte) 0xfd, '7', 'z', 'X', 'Z', 0}, "--xz"),
          new Compression(new byte[] {0x28, (byte) 0xb5, 0x2f, (byte) 0xfd}, "--zstd"),
          new Compression(new byte[] {'L', 'Z', 'I', 'P'}, "--lzip"),
          new Compression(new byte[] {(byte) 0x89, 'L', 'Z', 'O'}, "--lzop"),
          new Compression(new byte[] {0x5d, 0, 0}, "--lzma"));

  private record Compression(byte[] magic, String tarOption) {}

  /**
   * Unpacks {@code tarball} into the existing directory {@code into}, without ./dev (device nodes
   * cannot be made in a user namespace; the sandbox binds the host's), and creates {@code
   * normalUser}. The job server in {@code libexecDir} then makes the mount points and links of /dev
   * that it makes in a testbed, so that an overlay testbed over this tree finds them in its base
   * rather than copying them up at each open. Blocks.
   *
   * <p>The testbed's root may not reach {@code into} by its path (root's cache is root's alone),
   * nor read the tarball: the helper starts in {@code into} and reads the tarball on stdin, both
   * opened here.
   *
   * @param topMode the mode {@code into} gets, as chmod takes it (a shared base is made 0700, which
   *     no other user may enter), or empty to keep the tarball's: made in the namespace, where the
   *     top directory's owner, whoever the tarball says, is one of ours
   */
  static void unpack(
      IdMapping mapping,
      Path libexecDir,
      Path tarball,
      Path into,
      String normalUser,
      Optional<String> topMode) {
    List<String> argv = new ArrayList<>(mapping.userNamespaceCommand(libexecDir));
    argv.addAll(
        List.of(
            "/bin/sh",
            "-ec",
            FaultHook.shellHold("unpack")
                // Anchored, ./dev and dev: whichever way the tarball names its members.
                + "tar --anchored --exclude=./dev --exclude=dev $1 --extract --file -\n"
                // useradd chroots into its --root, a path: /proc/self/cwd reaches the directory
                // without its parents.
                + "useradd --create-home --root /proc/self/cwd \"$2\"\n"
                + "\"$3\" --dev-skeleton dev\n"
                + "[ -z \"$4\" ] || chmod \"$4\" .\n",
            "uchroot-unpack",
            compressionOption(tarball),
            normalUser,
            libexecDir.resolve(IdMapping.JOB_SERVER).toString(),
            topMode.orElse("")));
    HelperProcess.runSetUp(libexecDir, "unpacking " + tarball, argv, into, tarball);
  }

  /** The tar option that reads the tarball's compression, or an empty word when it has none. */
  private static String compressionOption(Path tarball) {
    byte[] head;
    try (InputStream in = Files.newInputStream(tarball)) {
      head = in.readNBytes(6);
    } catch (IOException e) {
      throw new UchrootException(
          "cannot read tarball " + tarball + ": " + UchrootException.reason(e), e);
    }
    for (Compression c : COMPRESSIONS) {
      if (head.length >= c.magic().length
          && Arrays.equals(head, 0, c.magic().length, c.magic(), 0, c.magic().length)) {
        return c.tarOption();
      }
    }
    return "";
  }
}
