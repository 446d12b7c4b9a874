package org.uchroot.engine;

import java.io.IOException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Objects;
import java.util.Optional;
import jnr.constants.platform.Errno;
import jnr.constants.platform.OpenFlags;
import jnr.ffi.LibraryLoader;
import jnr.ffi.Runtime;

/**
 * An exclusive flock(2) on a file that its holder may delete. Whoever deletes it does so while
 * holding it ({@link #deleteAndRelease}); a process that was waiting then gets the lock of a file
 * no longer at that path, sees so (the inode of its descriptor is not the path's) and starts again
 * on the path's new file, so two holders of "the" lock never coexist. An flock belongs to the open
 * file, so threads of one process exclude each other too. Not thread-safe: one holder uses an
 * instance and closes it.
 */
public final class LockFile implements AutoCloseable {

  /**
   * open(2), flock(2) and close(2) alone, through jnr-ffi: the JDK's file locks are fcntl locks,
   * which do not exclude threads of one process. Three functions load in a few milliseconds, where
   * all of jnr-posix takes a fifth of a second, which the first open of a testbed would wait.
   */
  public interface LibC {
    int open(String path, int flags, int mode);

    int flock(int fd, int operation);

    int close(int fd);
  }

  private static final class Native {
    static final LibC LIBC = LibraryLoader.create(LibC.class).load("c");
    static final Runtime RUNTIME = Runtime.getRuntime(LIBC);
  }

  /**
   * Loads the functions on a thread of its own, while the engine starts, so that the first open of
   * a testbed, which locks the rootfs cache, does not wait for jnr's set-up.
   */
  static void prepareInBackground() {
    Thread thread = new Thread(LockFile::loadNative, "uchroot-lock-setup");
    thread.setDaemon(true);
    thread.start();
  }

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
  public static LockFile acquire(Path path) throws IOException {
    return lock(path, true).orElseThrow();
  }

  /** Locks {@code path}, creating it if need be, unless someone holds it. */
  static Optional<LockFile> tryAcquire(Path path) throws IOException {
    return lock(path, false);
  }

  private static Optional<LockFile> lock(Path path, boolean wait) throws IOException {
    LibC libc = Native.LIBC;
    while (true) {
      int fd = libc.open(path.toString(), FLAGS, 0600);
      if (fd < 0) {
        throw failure(path, errno());
      }
      boolean held = false;
      try {
        int rc;
        do {
          rc = libc.flock(fd, wait ? LOCK_EX : LOCK_EX | LOCK_NB);
        } while (rc < 0 && errno() == Errno.EINTR.intValue());
        if (rc < 0) {
          int errno = errno();
          if (errno == Errno.EWOULDBLOCK.intValue()) {
            return Optional.empty();
          }
          throw failure(path, errno);
        }
        if (isAtPath(fd, path)) {
          held = true;
          return Optional.of(new LockFile(path, fd));
        }
        // Its last holder deleted it while this one waited (and someone may have made a new one).
      } finally {
        if (!held) {
          libc.close(fd);
        }
      }
    }
  }

  /** Initialises {@link Native}: jnr binds the functions then. */
  private static void loadNative() {
    Objects.requireNonNull(Native.LIBC);
  }

  private static int errno() {
    return Native.RUNTIME.getLastError();
  }

  /** The descriptor's file is the path's: /proc's link of a descriptor stats as the open file. */
  private static boolean isAtPath(int fd, Path path) throws IOException {
    Object open = Files.readAttributes(Path.of("/proc/self/fd/" + fd), "unix:dev,ino");
    try {
      return open.equals(Files.readAttributes(path, "unix:dev,ino", LinkOption.NOFOLLOW_LINKS));
    } catch (NoSuchFileException e) {
      return false;
    }
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
      Native.LIBC.close(fd);
      fd = -1;
    }
  }
}
