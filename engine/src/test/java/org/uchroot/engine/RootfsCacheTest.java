package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.OptionalLong;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

@Tag("integration")
class RootfsCacheTest {

  private static final Path LIBEXEC = EngineConfig.load().libexecDir();

  @Test
  void concurrentUsersShareOneCompleteBase(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    RootfsCache cache = newCache(tmp);
    ExecutorService pool = Executors.newFixedThreadPool(8);
    try {
      List<CompletableFuture<Path>> bases = new ArrayList<>();
      for (int i = 0; i < 8; i++) {
        bases.add(
            CompletableFuture.supplyAsync(() -> cache.baseFor(tarball, "uchroot", NO_CLAIM), pool));
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
    Path base = cache.baseFor(tarball, "uchroot", NO_CLAIM);
    assertEquals(
        "rwx------",
        PosixFilePermissions.toString(Files.getPosixFilePermissions(base.getParent())));
    assertEquals("rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(base)));
  }

  /** A server killed while unpacking leaves a partial base: the next one to need it removes it. */
  @Test
  void thePartialBaseOfAKilledUnpackGoesWithTheNextUnpack(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    RootfsCache cache = newCache(tmp);
    Path partial =
        tmp.resolve("cache/" + RootfsCache.keyOf(tarball, "uchroot", MAPPING) + ".partial-123");
    Files.createDirectories(partial.resolve("etc"));
    cache.baseFor(tarball, "uchroot", NO_CLAIM);
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
    // Another server holds the lock of the base it unpacks, as baseFor does: an flock.
    Process holder =
        new ProcessBuilder(
                "python3",
                "-c",
                "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX);"
                    + " print('held', flush=True); sys.stdin.read()",
                cacheDir.resolve(key + ".lock").toString())
            .start();
    try {
      assertEquals("held", new String(holder.getInputStream().readNBytes(4)));
      List<Path> removed = cache.prune();
      assertTrue(Files.isDirectory(unpacking), "the unpack under way lost its directory");
      assertFalse(Files.exists(stale));
      assertTrue(removed.contains(stale) && !removed.contains(unpacking), removed.toString());
    } finally {
      holder.getOutputStream().close();
      holder.waitFor();
    }
    cache.prune();
    assertFalse(Files.exists(unpacking), "once its server is gone, it is a leftover");
  }

  @Test
  void aChangedTarballGetsANewBaseAndPruneRemovesUnusedOnes(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    Set<Path> used = ConcurrentHashMap.newKeySet();
    RootfsCache cache = newCache(tmp, OptionalLong.empty(), used);
    Path first = cache.baseFor(tarball, "uchroot", used::add);
    assertEquals(first, cache.baseFor(tarball, "uchroot", NO_CLAIM));
    Files.setLastModifiedTime(tarball, FileTime.fromMillis(0));
    Path second = cache.baseFor(tarball, "uchroot", NO_CLAIM);
    used.clear();
    assertNotEquals(first, second);
    assertEquals(2, cache.list().size());
    used.add(second);
    List<Path> removed = cache.prune();
    assertEquals(List.of(first), removed);
    assertFalse(Files.exists(first));
    assertTrue(Files.isDirectory(second));
  }

  /** A base's size is measured before it is renamed into place, and kept in its metadata. */
  @Test
  void aBasesSizeIsRecordedWhenItIsUnpacked(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    RootfsCache cache = newCache(tmp);
    Path base = cache.baseFor(tarball, "uchroot", NO_CLAIM);
    String key = base.getFileName().toString();
    Properties meta = new Properties();
    try (Reader in = Files.newBufferedReader(tmp.resolve("cache/" + key + ".meta"))) {
      meta.load(in);
    }
    long recorded = Long.parseLong(meta.getProperty("bytes"));
    assertEquals(RootfsCache.sizeOf(LIBEXEC, base), recorded);
    long busybox = Files.size(base.resolve("bin/busybox"));
    assertTrue(recorded > busybox && recorded < 4 * Files.size(tarball) + (1 << 20), "" + recorded);
    assertEquals(recorded, cache.list().get(0).bytes());
  }

  /** A base made before sizes were recorded gets its size measured at the next listing. */
  @Test
  void anOlderBasesSizeIsMeasuredAndItsLastUseKept(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    RootfsCache cache = newCache(tmp);
    Path base = cache.baseFor(tarball, "uchroot", NO_CLAIM);
    Path metaFile = tmp.resolve("cache/" + base.getFileName() + ".meta");
    List<String> lines = Files.readAllLines(metaFile);
    Files.write(metaFile, lines.stream().filter(l -> !l.startsWith("bytes=")).toList());
    Files.setLastModifiedTime(metaFile, FileTime.fromMillis(1_000_000));
    RootfsCache.Base listed = cache.list().get(0);
    assertEquals(RootfsCache.sizeOf(LIBEXEC, base), listed.bytes());
    assertEquals(FileTime.fromMillis(1_000_000).toInstant(), listed.lastUsed());
    assertTrue(Files.readString(metaFile).contains("bytes=" + listed.bytes()));
    assertEquals(FileTime.fromMillis(1_000_000), Files.getLastModifiedTime(metaFile));
  }

  @Test
  void sizesCountEachFileOnceAndFollowNoLink(@TempDir Path tmp) throws Exception {
    Path tree = Files.createDirectories(tmp.resolve("tree"));
    Files.write(tree.resolve("a"), new byte[100_000]);
    Files.createLink(tree.resolve("b"), tree.resolve("a"));
    Files.createSymbolicLink(tree.resolve("up"), tmp);
    Path sub = Files.createDirectories(tree.resolve("sub"));
    Files.write(sub.resolve("c"), new byte[100_000]);
    long size = RootfsCache.sizeOf(LIBEXEC, tree);
    long blocksOfA = RootfsCache.sizeOf(LIBEXEC, tree.resolve("a"));
    assertTrue(blocksOfA >= 100_000);
    // a and c; b is a's other name, and what "up" points to is not the tree's.
    assertTrue(size >= 2 * blocksOfA && size < 3 * blocksOfA, "" + size);
    assertEquals(0, RootfsCache.sizeOf(LIBEXEC, tmp.resolve("none")));
  }

  @Test
  void listSaysWhetherEachBasesTarballIsCurrentReplacedOrMissing(@TempDir Path tmp)
      throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    Path gone = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("gone.tar"));
    Set<Path> used = ConcurrentHashMap.newKeySet();
    RootfsCache cache = newCache(tmp, OptionalLong.empty(), used);
    Path old = cache.baseFor(tarball, "uchroot", used::add);
    Path ofGone = cache.baseFor(gone, "uchroot", used::add);
    Files.delete(gone);
    // The same path, another file.
    Files.delete(tarball);
    Files.copy(BusyboxRootfs.tarball(), tarball);
    Path current = cache.baseFor(tarball, "uchroot", used::add);
    Map<Path, RootfsCache.State> states =
        cache.list().stream()
            .collect(Collectors.toMap(RootfsCache.Base::root, RootfsCache.Base::state));
    assertEquals(
        Map.of(
            old, RootfsCache.State.REPLACED,
            ofGone, RootfsCache.State.MISSING,
            current, RootfsCache.State.CURRENT),
        states);
    assertEquals(tarball.toRealPath(), cache.list().get(0).tarball());
  }

  /** A replaced tarball's base stays while a testbed uses it, and goes at the next open after. */
  @Test
  void aReplacedTarballsBaseGoesAtTheNextOpenOnceUnused(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    Path other = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("other.tar"));
    Set<Path> used = ConcurrentHashMap.newKeySet();
    RootfsCache cache = newCache(tmp, OptionalLong.empty(), used);
    Path old = cache.baseFor(tarball, "uchroot", used::add);
    Path ofOther = cache.baseFor(other, "uchroot", NO_CLAIM);
    Files.setLastModifiedTime(tarball, FileTime.fromMillis(0));
    Path replacement = cache.baseFor(tarball, "uchroot", NO_CLAIM);
    assertTrue(Files.isDirectory(old), "a base in use was removed");
    used.remove(old);
    assertEquals(replacement, cache.baseFor(tarball, "uchroot", NO_CLAIM));
    assertFalse(Files.exists(old));
    assertFalse(Files.exists(Path.of(old + ".lock")));
    assertFalse(Files.exists(Path.of(old + ".meta")));
    assertTrue(Files.isDirectory(ofOther), "another tarball's unused base went too");
    assertEquals(Set.of(replacement, ofOther), bases(cache));
  }

  /**
   * Over the limit, the least recently used unused bases go until the rest fits: never one in use,
   * never the new one.
   */
  @Test
  void overTheLimitTheLeastRecentlyUsedUnusedBasesGo(@TempDir Path tmp) throws Exception {
    List<Path> tarballs = new ArrayList<>();
    for (int i = 0; i < 4; i++) {
      tarballs.add(Files.copy(BusyboxRootfs.tarball(), tmp.resolve("t" + i + ".tar")));
    }
    Set<Path> used = ConcurrentHashMap.newKeySet();
    RootfsCache unlimited = newCache(tmp, OptionalLong.empty(), used);
    Path inUse = unlimited.baseFor(tarballs.get(0), "uchroot", used::add);
    Path older = unlimited.baseFor(tarballs.get(1), "uchroot", NO_CLAIM);
    Path newer = unlimited.baseFor(tarballs.get(2), "uchroot", NO_CLAIM);
    // Last uses in that order, whatever the clock's granularity.
    List<Path> made = List.of(inUse, older, newer);
    for (int i = 0; i < made.size(); i++) {
      Files.setLastModifiedTime(
          Path.of(made.get(i) + ".meta"), FileTime.fromMillis(1000L * (i + 1)));
    }
    long each = unlimited.list().stream().mapToLong(RootfsCache.Base::bytes).max().orElseThrow();
    // Room for three and a half: the fourth base pushes out exactly one.
    RootfsCache limited = newCache(tmp, OptionalLong.of(3 * each + each / 2), used);
    Path newest = limited.baseFor(tarballs.get(3), "uchroot", NO_CLAIM);
    assertEquals(Set.of(inUse, newer, newest), bases(limited));
    assertFalse(Files.exists(Path.of(older + ".lock")));

    // A limit nothing fits in: everything unused goes but the new base.
    RootfsCache tiny = newCache(tmp, OptionalLong.of(0), used);
    Files.setLastModifiedTime(tarballs.get(1), FileTime.fromMillis(0));
    Path made5 = tiny.baseFor(tarballs.get(1), "uchroot", NO_CLAIM);
    assertEquals(Set.of(inUse, made5), bases(tiny));
  }

  /** A prune that comes while a testbed claims its base waits for the claim and keeps the base. */
  @Test
  void pruneAsksWhetherABaseIsInUseUnderItsLock(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    Set<Path> used = ConcurrentHashMap.newKeySet();
    RootfsCache cache = newCache(tmp, OptionalLong.empty(), used);
    List<CompletableFuture<List<Path>>> prunes = new ArrayList<>();
    Path base =
        cache.baseFor(
            tarball,
            "uchroot",
            claimed -> {
              try {
                prunes.add(CompletableFuture.supplyAsync(cache::prune));
                ProcLocks.awaitWaiterOn(ProcLocks.inode(Path.of(claimed + ".lock")));
              } catch (IOException e) {
                throw new UncheckedIOException(e);
              }
              used.add(claimed);
            });
    assertEquals(List.of(), prunes.get(0).get(60, TimeUnit.SECONDS));
    assertTrue(Files.isDirectory(base));
  }

  /** prune leaves no lock file, partial base or metadata of what it removed. */
  @Test
  void pruneRemovesLockFiles(@TempDir Path tmp) throws Exception {
    Path tarball = Files.copy(BusyboxRootfs.tarball(), tmp.resolve("rootfs.tar"));
    RootfsCache cache = newCache(tmp);
    cache.baseFor(tarball, "uchroot", NO_CLAIM);
    // The lock of a base removed by an older uchroot, which left it.
    Files.createFile(tmp.resolve("cache/gone-0123456789abcdef.lock"));
    cache.prune();
    try (Stream<Path> left = Files.list(tmp.resolve("cache"))) {
      assertEquals(List.of(), left.toList());
    }
  }

  private static Set<Path> bases(RootfsCache cache) {
    return cache.list().stream().map(RootfsCache.Base::root).collect(Collectors.toSet());
  }

  private static final Consumer<Path> NO_CLAIM = base -> {};

  private static final IdMapping MAPPING = Host.idMapping(EngineConfig.load());

  private static RootfsCache newCache(Path tmp) {
    return newCache(tmp, OptionalLong.empty(), Set.of());
  }

  private static RootfsCache newCache(Path tmp, OptionalLong maxBytes, Set<Path> used) {
    return new RootfsCache(
        tmp.resolve("cache"), MAPPING, EngineConfig.load().libexecDir(), maxBytes, used::contains);
  }
}
