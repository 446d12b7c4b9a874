package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.ExecutorService;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@Tag("integration")
class RootfsCacheTest {

  @Test
  void concurrentUsersShareOneCompleteBase(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    RootfsCache cache = newCache(tmp);
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<CompletableFuture<Path>> bases = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        bases.add(CompletableFuture.supplyAsync(() -> cache.baseFor(tarball, "uchroot"), pool));
      }
      Set<Path> distinct = Set.copyOf(bases.stream().map(CompletableFuture::join).toList());
      assertEquals(1, distinct.size());
      Path base = distinct.iterator().next();
      assertTrue(Files.isRegularFile(base.resolve("bin/busybox")));
      assertTrue(Files.isDirectory(base.resolve("home/uchroot")));
      // /dev as the job server completes it, so that no testbed copies it up.
      Path dev = base.resolve("dev");
      assertTrue(Files.isDirectory(dev.resolve("pts"), LinkOption.NOFOLLOW_LINKS));
      assertTrue(Files.isRegularFile(dev.resolve("null"), LinkOption.NOFOLLOW_LINKS));
      assertEquals(Set.of(), Files.getPosixFilePermissions(dev.resolve("null")));
      assertEquals(Path.of("/proc/self/fd"), Files.readSymbolicLink(dev.resolve("fd")));
      assertEquals(Path.of("/dev/pts/ptmx"), Files.readSymbolicLink(dev.resolve("ptmx")));
      assertEquals(1, cache.list().size());
    } finally {
      pool.shutdownNow();
    }
  }

  /** A base holds what its tarball held, setuid files too: no other user may reach any of it. */
  @Test
  void theCacheAndItsBasesArePrivateToTheirOwner(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    RootfsCache cache = newCache(tmp);
    Path base = cache.baseFor(tarball, "uchroot");
    assertEquals(
        "rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(base.getParent())));
    assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(base)));
  }

  /** A server killed while unpacking leaves a partial base: the next one to need it removes it. */
  @Test
  void thePartialBaseOfAKilledUnpackGoesWithTheNextUnpack(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    RootfsCache cache = newCache(tmp);
    Path partial = tmp.resolve("cache/" + RootfsCache.keyOf(tarball, "uchroot", MAPPING) + ".partial-123");
    Files.createDirectories(partial.resolve("etc"));
    cache.baseFor(tarball, "uchroot");
    assertFalse(Files.exists(partial));
  }

  /** prune removes what killed unpacks left, never a base another server is unpacking. */
  @Test
  void pruneLeavesAPartialBaseWhoseUnpackIsUnderWay(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    RootfsCache cache = newCache(tmp);
    String key = RootfsCache.keyOf(tarball, "uchroot", MAPPING);
    Path cacheDir = Files.createDirectories(tmp.resolve("cache"));
    Path unpacking = Files.createDirectories(cacheDir.resolve(key + ".partial-1"));
    Path stale = Files.createDirectories(cacheDir.resolve("other-0123.partial-2"));
    // Another server holds the lock of the base it unpacks, as baseFor does: a POSIX record lock.
    Process holder =
        new ProcessBuilder(
                "python3",
                "-c",
                "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.lockf(f, fcntl.LOCK_EX);"
                    + " print('held', flush=True); sys.stdin.read()",
                cacheDir.resolve(key + ".lock").toString())
            .start();
    try {
      assertEquals("held", new String(holder.getInputStream().readNBytes(4)));
      List<Path> removed = cache.prune(Set.of());
      assertTrue(Files.isDirectory(unpacking), "the unpack under way lost its directory");
      assertFalse(Files.exists(stale));
      assertTrue(removed.contains(stale) && !removed.contains(unpacking), removed.toString());
    } finally {
      holder.getOutputStream().close();
      holder.waitFor();
    }
    cache.prune(Set.of());
    assertFalse(Files.exists(unpacking), "once its server is gone, it is a leftover");
  }

  @Test
  void aChangedTarballGetsANewBaseAndPruneRemovesUnusedOnes(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    RootfsCache cache = newCache(tmp);
    Path first = cache.baseFor(tarball, "uchroot");
    assertEquals(first, cache.baseFor(tarball, "uchroot"));
    Files.setLastModifiedTime(tarball, FileTime.fromMillis(0));
    Path second = cache.baseFor(tarball, "uchroot");
    assertNotEquals(first, second);
    assertEquals(2, cache.list().size());
    List<Path> removed = cache.prune(Set.of(second));
    assertEquals(List.of(first), removed);
    assertFalse(Files.exists(first));
    assertTrue(Files.isDirectory(second));
  }

  private static final IdMapping MAPPING = Host.idMapping(EngineConfig.load());

  private static RootfsCache newCache(Path tmp) {
    return new RootfsCache(tmp.resolve("cache"), MAPPING, EngineConfig.load().libexecDir());
  }
}
