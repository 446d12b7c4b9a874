package org.uchroot.engine;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import jnr.constants.platform.Errno;
import jnr.constants.platform.OpenFlags;
import jnr.posix.FileStat;
import jnr.posix.POSIX;

/**
 * An exclusive flock(2) on a file that its holder may delete. Whoever deletes it does so while
 * holding it ({@link #deleteAndRelease}); a process that was waiting then gets the lock of a file
 * no longer at that path, sees so (the inode of its descriptor is not the path's) and starts again
 * on the path's new file, so two holders of "the" lock never coexist. An flock belongs to the open
 * file, so threads of one process exclude each other too. Not thread-safe: one holder uses an
 * instance and closes it.
 */
final class LockFile implements AutoCloseable {

  // <sys/file.h>
  private static final int LOCK_EX = 2;
  private static final int LOCK_NB = 4;
  private static final int FLAGS =
      OpenFlags.O_RDWR.intValue()
          | OpenFlags.O_CREAT.intValue()
          | OpenFlags.O_CLOEXEC.intValue()
          | OpenFlags.O_NOFOLLOW.intValue();

  private final Path path;
  private int fd;

  private LockFile(Path path, int fd) {
    this.path = path;
    this.fd = fd;
  }

  /** Locks {@code path}, creating it if need be; blocks until no one else holds it. */
  static LockFile acquire(Path path) throws IOException {
    return lock(path, true).orElseThrow();
  }

  /** Locks {@code path}, creating it if need be, unless someone holds it. */
  static Optional<LockFile> tryAcquire(Path path) throws IOException {
    return lock(path, false);
  }

  private static Optional<LockFile> lock(Path path, boolean wait) throws IOException {
    POSIX posix = Host.posix();
    while (true) {
      int fd = posix.open(path.toString(), FLAGS, 0600);
      if (fd < 0) {
        throw failure(path, posix.errno());
      }
      boolean held = false;
      try {
        int rc;
        do {
          rc = posix.flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB);
        } while (rc < 0 && posix.errno() == Errno.EINTR.intValue());
        if (rc < 0) {
          int errno = posix.errno();
          if (errno == Errno.EWOULDBLOCK.intValue()) {
            return Optional.empty();
          }
          throw failure(path, errno);
        }
        if (isAtPath(posix, fd, path)) {
          held = true;
          return Optional.of(new LockFile(path, fd));
        }
        // Its last holder deleted it while this one waited (and someone may have made a new one).
      } finally {
        if (!held) {
          posix.close(fd);
        }
      }
    }
  }

  private static boolean isAtPath(POSIX posix, int fd, Path path) throws IOException {
    FileStat open = posix.allocateStat();
    if (posix.fstat(fd, open) < 0) {
      throw failure(path, posix.errno());
    }
    FileStat there = posix.allocateStat();
    return posix.stat(path.toString(), there) == 0
        && there.dev() == open.dev()
        && there.ino() == open.ino();
  }

  private static IOException failure(Path path, int errno) {
    return new FileSystemException(path.toString(), null, Errno.valueOf(errno).description());
  }

  /** Deletes the lock file, then releases it: whoever waits on it starts again on a new one. */
  void deleteAndRelease() throws IOException {
    try {
      Files.deleteIfExists(path);
    } finally {
      close();
    }
  }

  /** Releases the lock; the file stays for the next holder. */
  @Override
  public void close() {
    if (fd >= 0) {
      Host.posix().close(fd);
      fd = -1;
    }
  }
}
