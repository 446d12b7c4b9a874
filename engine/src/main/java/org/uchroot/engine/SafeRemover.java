package org.uchroot.engine;

import java.io.IOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

/**
 * Deletes a rootfs without ever following a symlink or leaving its filesystem: from this process
 * when it may, else (files of subordinate ids) with GNU {@code rm -rf --one-file-system} inside a
 * user namespace with the session's id mapping. Refuses to start while anything is mounted at or
 * below the rootfs.
 */
final class SafeRemover {

  private final IdMapping mapping;
  private final Path libexecDir;

  /**
   * @param libexecDir where {@code uchroot-jobd} is, which starts the helper
   */
  SafeRemover(IdMapping mapping, Path libexecDir) {
    this.mapping = mapping;
    this.libexecDir = libexecDir;
  }

  /**
   * A remover of the calling user's testbeds, whatever mapping they were made with: root deletes
   * every file itself; another user needs its own subordinate ids for the files of the testbed's
   * other users.
   */
  static SafeRemover ofCaller(Path libexecDir) {
    return new SafeRemover(Host.isRoot() ? IdMapping.HOST : Host.subordinate(), libexecDir);
  }

  /** Blocks: call only from a blocking thread. */
  void removeNow(Path rootfs) {
    Path dir = rootfs.toAbsolutePath().normalize();
    if (!Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    checkRemovable(dir);
    List<Path> mounts = MountTable.mountsAtOrBelow(dir);
    if (!mounts.isEmpty()) {
      throw new UchrootException("refusing to remove " + dir + ": still mounted there: " + mounts);
    }
    try {
      deleteTree(dir);
    } catch (AccessDeniedException e) {
      // Files of subordinate ids: only the user namespace's root may delete them.
      if (!(mapping instanceof IdMapping.Subordinate subordinate)) {
        throw new UchrootException("cannot remove " + e.getFile() + ": permission denied", e);
      }
      removeInUserNamespace(subordinate, libexecDir, dir);
    } catch (IOException e) {
      throw new UchrootException("cannot remove " + dir + ": " + UchrootException.reason(e), e);
    }
    if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
      throw new UchrootException("could not remove all of " + dir);
    }
  }

  /**
   * Deletes the tree from this process: a close then costs no process at all. Symlinks are deleted,
   * never followed; a directory on another filesystem stops it, as a mount point that the mount
   * table did not show.
   */
  private static void deleteTree(Path top) throws IOException {
    Object device = Files.getAttribute(top, "unix:dev", LinkOption.NOFOLLOW_LINKS);
    Files.walkFileTree(
        top,
        new SimpleFileVisitor<>() {
          @Override
          public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs)
              throws IOException {
            if (!device.equals(Files.getAttribute(dir, "unix:dev", LinkOption.NOFOLLOW_LINKS))) {
              throw new IOException(dir + " is on another filesystem");
            }
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult visitFileFailed(Path file, IOException failure)
              throws IOException {
            // A directory of ours that we may not read: overlayfs makes its work directory so.
            if (failure instanceof AccessDeniedException
                && Files.isDirectory(file, LinkOption.NOFOLLOW_LINKS)
                && ownedByUs(file)) {
              Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwx------"));
              deleteTree(file);
              return FileVisitResult.CONTINUE;
            }
            throw failure;
          }

          @Override
          public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
              throws IOException {
            Files.delete(file);
            return FileVisitResult.CONTINUE;
          }

          @Override
          public FileVisitResult postVisitDirectory(Path dir, IOException failure)
              throws IOException {
            if (failure != null) {
              throw failure;
            }
            Files.delete(dir);
            return FileVisitResult.CONTINUE;
          }
        });
  }

  private static boolean ownedByUs(Path file) throws IOException {
    return Files.getAttribute(file, "unix:uid", LinkOption.NOFOLLOW_LINKS).equals(Host.uid());
  }

  /** GNU rm as the namespace's root, which never follows symlinks nor leaves the filesystem. */
  private static void removeInUserNamespace(
      IdMapping.Subordinate subordinate, Path libexecDir, Path dir) {
    List<String> argv = new ArrayList<>(subordinate.userNamespaceCommand(libexecDir));
    argv.addAll(List.of("rm", "-rf", "--one-file-system", "--", dir.toString()));
    HelperProcess.run(libexecDir, "removing " + dir, argv);
  }

  /** The path itself must be a real directory reached without symlinks, and never /. */
  private static void checkRemovable(Path dir) {
    if (dir.getNameCount() < 1) {
      throw new UchrootException("refusing to remove " + dir);
    }
    try {
      if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS) || !dir.toRealPath().equals(dir)) {
        throw new UchrootException("refusing to remove " + dir + ": not a plain directory");
      }
    } catch (IOException e) {
      throw new UchrootException("cannot inspect " + dir + ": " + UchrootException.reason(e), e);
    }
  }
}
