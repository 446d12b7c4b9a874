package org.uchroot.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.locks.LockSupport;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** What /proc/locks says: lets a test know that a thread is blocked on a lock, without guessing. */
final class ProcLocks {

  /** A blocked request: {@code 1: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF}. */
  private static final Pattern WAITER =
      Pattern.compile("^\\d+: -> \\S+\\s+\\S+\\s+\\S+\\s+\\d+ [0-9a-f]+:[0-9a-f]+:(\\d+) ");

  private ProcLocks() {}

  static long inode(Path path) throws IOException {
    return ((Number) Files.getAttribute(path, "unix:ino", LinkOption.NOFOLLOW_LINKS)).longValue();
  }

  /** Returns once someone waits for a lock on the file {@code inode}; fails after a minute. */
  static void awaitWaiterOn(long inode) throws IOException {
    Instant deadline = Instant.now().plus(Duration.ofMinutes(1));
    while (Instant.now().isBefore(deadline)) {
      for (String line : Files.readAllLines(Path.of("/proc/locks"))) {
        Matcher m = WAITER.matcher(line);
        if (m.find() && Long.parseLong(m.group(1)) == inode) {
          return;
        }
      }
      LockSupport.parkNanos(1_000_000);
    }
    throw new AssertionError("nobody waited for a lock on inode " + inode);
  }
}
