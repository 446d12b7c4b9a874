package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LockFileTest {

  @Test
  void aHeldLockKeepsOutOtherThreadsOfTheProcess(@TempDir Path tmp) throws Exception {
    Path path = tmp.resolve("k.lock");
    try (LockFile held = LockFile.acquire(path)) {
      CompletableFuture<Boolean> free = CompletableFuture.supplyAsync(() -> tryAcquire(path));
      assertFalse(free.get(30, TimeUnit.SECONDS));
    }
    assertTrue(tryAcquire(path));
  }

  /**
   * Its holder deletes the lock file, another process makes a new one and locks it, then the first
   * lets go: the one that was waiting must not take the deleted file's lock for the path's.
   */
  @Test
  void aWaiterWhoseFileWasDeletedAndMadeAgainWaitsForTheNewOne(@TempDir Path tmp) throws Exception {
    Path path = tmp.resolve("k.lock");
    LockFile first = LockFile.acquire(path);
    long deleted = ProcLocks.inode(path);
    CompletableFuture<LockFile> waiter = CompletableFuture.supplyAsync(() -> acquire(path));
    ProcLocks.awaitWaiterOn(deleted);
    Files.delete(path);
    LockFile second = LockFile.acquire(path);
    first.close();
    ProcLocks.awaitWaiterOn(ProcLocks.inode(path));
    assertFalse(waiter.isDone(), "the waiter took the lock of a file no longer at the path");
    second.close();
    try (LockFile third = waiter.get(30, TimeUnit.SECONDS)) {
      assertFalse(tryAcquire(path), "two holders of the path's lock");
    }
  }

  @Test
  void deleteAndReleaseRemovesTheFile(@TempDir Path tmp) throws Exception {
    Path path = tmp.resolve("k.lock");
    LockFile.acquire(path).deleteAndRelease();
    assertFalse(Files.exists(path));
  }

  private static LockFile acquire(Path path) {
    try {
      return LockFile.acquire(path);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static boolean tryAcquire(Path path) {
    try {
      return LockFile.tryAcquire(path)
          .map(
              lock -> {
                lock.close();
                return true;
              })
          .orElse(false);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
