package org.uchroot.engine;

import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.OptionalLong;
import java.util.Properties;
import java.util.Set;
import java.util.function.Consumer;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.OneLineMessage;

/**
 * Read-only base trees, one per tarball, shared by the overlay testbeds of every session and every
 * server process of the user. A base is keyed by the tarball's path, size, mtime, ctime and inode,
 * so a changed tarball gets a new base. It is unpacked under its lock ({@link LockFile} {@code
 * KEY.lock}) into a temporary directory and renamed into place when complete: a half-unpacked base
 * is never used. {@code KEY.meta} records its tarball and size; its mtime is the base's last use.
 *
 * <p>A testbed claims its base under that lock, and every removal asks whether a live testbed uses
 * the base under it too, so no base goes between being handed out and being recorded as used. A
 * base goes when its tarball was replaced and it is unused (at the next use of that tarball), when
 * the bases exceed the size limit and it is the least recently used unused one (after an unpack),
 * and at {@link #prune}. Thread-safe; every method but {@link #list} may block for long.
 */
public final class RootfsCache {

  private static final Logger LOG = LoggerFactory.getLogger(RootfsCache.class);
  private static final String META = ".meta";
  private static final String LOCK = ".lock";

  /** What follows a key in the name of a base being unpacked or removed. */
  private static final String PARTIAL = ".partial-";

  private static final Set<PosixFilePermission> PRIVATE =
      PosixFilePermissions.fromString("rwx------");

  private final Path dir;
  private final IdMapping mapping;
  private final Path libexecDir;
  private final OptionalLong maxBytes;
  private final Predicate<Path> inUse;

  /**
   * @param libexecDir where the job server is, which completes the bases' /dev
   * @param maxBytes the most the bases may take together; empty for no limit
   * @param inUse whether a live testbed uses the base at a path; asked with that base's lock held
   */
  public RootfsCache(
      Path dir, IdMapping mapping, Path libexecDir, OptionalLong maxBytes, Predicate<Path> inUse) {
    this.dir = dir;
    this.mapping = mapping;
    this.libexecDir = libexecDir;
    this.maxBytes = maxBytes;
    this.inUse = inUse;
  }

  /** The calling user's cache, whose bases the user's recorded live testbeds keep. */
  public static RootfsCache of(EngineConfig config) {
    SessionRegistry registry = SessionRegistry.of(config);
    return new RootfsCache(
        config.cacheDir(),
        Host.idMapping(config),
        config.libexecDir(),
        config.cacheMaxBytes(),
        registry::usesBase);
  }

  /** How a base stands to the file now at its tarball's path. */
  public enum State {
    /** The tarball is the one the base was unpacked from. */
    CURRENT,
    /** Another file, or the same one changed, is at the tarball's path now. */
    REPLACED,
    /** Nothing is at the tarball's path any more. */
    MISSING
  }

  /**
   * A cached base.
   *
   * @param bytes what it takes on disk, as far as the caller can read it (see {@link #sizeOf(Path,
   *     Path)})
   * @param lastUsed when a testbed last got it
   */
  public record Base(
      String key, Path root, Path tarball, long bytes, Instant lastUsed, State state) {}

  /**
   * The base tree of {@code tarball}, unpacked (with {@code normalUser} created in it) if it is not
   * cached yet. {@code claim} runs under the base's lock before it is released, and must record the
   * testbed that uses the base where {@code inUse} will see it. Then removes what the new base
   * replaces or pushes over the size limit. Blocks, possibly for as long as unpacking takes.
   */
  Path baseFor(Path tarball, String normalUser, Consumer<Path> claim) {
    Path real = realPath(tarball);
    String key = keyOf(tarball, normalUser, mapping);
    Path base = dir.resolve(key);
    boolean unpacked = false;
    try {
      Files.createDirectories(dir);
      // Private all the way down: a base holds what its tarball held, setuid files included,
      // which no other user may reach. Caches made before are made private too.
      Files.setPosixFilePermissions(dir, PRIVATE);
      try (LockFile lock = LockFile.acquire(lockOf(key))) {
        if (!Files.isDirectory(base, LinkOption.NOFOLLOW_LINKS)) {
          // Under the lock, any partial base of this key is what a killed server left.
          removePartials(key);
          unpack(tarball, real, normalUser, key, base);
          unpacked = true;
        }
        claim.accept(base);
        touch(key);
      }
    } catch (IOException e) {
      throw new UchrootException(
          "cannot use the rootfs cache "
              + dir
              + ": "
              + UchrootException.reason(e)
              + "; check that it is a directory of yours, or set uchroot.cache-dir",
          e);
    }
    removeReplaced(real, key);
    if (unpacked) {
      evictBeyondLimit(key);
    }
    return base;
  }

  private void unpack(Path tarball, Path real, String normalUser, String key, Path base)
      throws IOException {
    long started = System.nanoTime();
    Path partial = Files.createTempDirectory(dir, key + PARTIAL);
    try {
      mapping.giveToTestbedRoot(partial);
      Unpacker.unpack(mapping, libexecDir, tarball, partial, normalUser, Optional.of("0700"));
      Properties meta = new Properties();
      meta.setProperty("tarball", real.toString());
      meta.setProperty("tarball-id", tarballId(real));
      meta.setProperty("created", Instant.now().toString());
      meta.setProperty("bytes", Long.toString(sizeOf(libexecDir, partial)));
      writeMeta(key, meta);
      Files.move(partial, base, StandardCopyOption.ATOMIC_MOVE);
    } catch (RuntimeException | IOException e) {
      remover().removeNow(partial);
      throw e;
    }
    LOG.info(
        "unpacked {} into the cache in {} ms", tarball, (System.nanoTime() - started) / 1_000_000);
  }

  private void touch(String key) throws IOException {
    Path meta = dir.resolve(key + META);
    if (Files.exists(meta)) {
      Files.setLastModifiedTime(meta, FileTime.from(Instant.now()));
    }
  }

  /** Every complete base, most recently used first. */
  public List<Base> list() {
    List<Base> bases = new ArrayList<>();
    if (!Files.isDirectory(dir)) {
      return bases;
    }
    try (DirectoryStream<Path> metas = Files.newDirectoryStream(dir, "*" + META)) {
      for (Path meta : metas) {
        String name = meta.getFileName().toString();
        String key = name.substring(0, name.length() - META.length());
        Path root = dir.resolve(key);
        if (!Files.isDirectory(root, LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        try {
          Properties p = readMeta(meta);
          Instant lastUsed = Files.getLastModifiedTime(meta).toInstant();
          long bytes =
              p.containsKey("bytes")
                  ? Long.parseLong(p.getProperty("bytes"))
                  : recordSize(key, p, lastUsed);
          bases.add(
              new Base(
                  key, root, Path.of(p.getProperty("tarball", "?")), bytes, lastUsed, stateOf(p)));
        } catch (NoSuchFileException e) {
          // Removed meanwhile.
        }
      }
    } catch (IOException | RuntimeException e) {
      throw new UchrootException(
          "cannot read the rootfs cache "
              + dir
              + ": "
              + (e instanceof IOException io ? UchrootException.reason(io) : e.toString())
              + "; check its owner and mode, or run uchroot cache prune",
          e);
    }
    bases.sort((a, b) -> b.lastUsed().compareTo(a.lastUsed()));
    return bases;
  }

  /**
   * The size of a base made before sizes were recorded, measured now and recorded unless the base
   * is busy; its last use is kept.
   */
  private long recordSize(String key, Properties meta, Instant lastUsed) throws IOException {
    long bytes = sizeOf(libexecDir, dir.resolve(key));
    Optional<LockFile> lock = LockFile.tryAcquire(lockOf(key));
    if (lock.isPresent()) {
      try (LockFile held = lock.get()) {
        if (Files.exists(dir.resolve(key + META))) {
          meta.setProperty("bytes", Long.toString(bytes));
          writeMeta(key, meta);
          Files.setLastModifiedTime(dir.resolve(key + META), FileTime.from(lastUsed));
        }
      }
    }
    return bytes;
  }

  /** Missing too when the tarball's path cannot be read: no testbed can get that base again. */
  private static State stateOf(Properties meta) {
    try {
      Path real = Path.of(meta.getProperty("tarball", "?")).toRealPath();
      String id = meta.getProperty("tarball-id");
      if (id != null) {
        return id.equals(tarballId(real)) ? State.CURRENT : State.REPLACED;
      }
      // Made before the tarball's identity was recorded: a change to the file at the path, or
      // another file there, gives it a ctime later than the base's creation.
      Instant changed = ((FileTime) Files.getAttribute(real, "unix:ctime")).toInstant();
      Instant created = Instant.parse(meta.getProperty("created"));
      return changed.isAfter(created) ? State.REPLACED : State.CURRENT;
    } catch (IOException e) {
      return State.MISSING;
    }
  }

  /**
   * Removes every base that no live testbed uses, whatever its state, with its metadata and lock
   * file, then the leftovers of interrupted unpacks ({@link #removeStalePartials}). Each base is
   * checked and removed under its lock, waiting for a server that is unpacking or claiming it.
   * Blocks. Returns what went.
   */
  public List<Path> prune() {
    List<Path> removed = new ArrayList<>();
    for (Base base : list()) {
      try (LockFile lock = LockFile.acquire(lockOf(base.key()))) {
        if (Files.isDirectory(base.root(), LinkOption.NOFOLLOW_LINKS) && !inUse.test(base.root())) {
          remove(base.key(), lock);
          removed.add(base.root());
        }
      } catch (IOException e) {
        throw new UchrootException(
            "cannot prune "
                + base.root()
                + ": "
                + UchrootException.reason(e)
                + "; check the cache directory's owner and mode, then prune again",
            e);
      }
    }
    removed.addAll(removeStalePartials());
    return removed;
  }

  /**
   * Removes the partial bases of unpacks or removals that did not finish (their process was
   * killed), never one being unpacked now, and the lock files left with no base. Blocks. Returns
   * the partial bases that went.
   */
  public List<Path> removeStalePartials() {
    List<Path> removed = new ArrayList<>();
    try (DirectoryStream<Path> partials = Files.newDirectoryStream(dir, "*" + PARTIAL + "*")) {
      for (Path partial : partials) {
        String name = partial.getFileName().toString();
        String key = name.substring(0, name.indexOf(PARTIAL));
        // A partial base whose lock is free is a killed server's; one whose lock is held is
        // being unpacked right now, and stays.
        Optional<LockFile> lock = LockFile.tryAcquire(lockOf(key));
        if (lock.isPresent()) {
          try (LockFile held = lock.get()) {
            if (Files.exists(partial, LinkOption.NOFOLLOW_LINKS)) {
              remover().removeNow(partial);
              removed.add(partial);
            }
          }
        }
      }
      removeUnusedLocks();
    } catch (NoSuchFileException e) {
      // No cache directory: nothing was left over.
    } catch (IOException e) {
      throw new UchrootException(
          "cannot remove leftovers in the rootfs cache "
              + dir
              + ": "
              + UchrootException.reason(e)
              + "; check its owner and mode",
          e);
    }
    return removed;
  }

  /** Deletes the lock files that no base or partial base needs, unless someone holds them. */
  private void removeUnusedLocks() throws IOException {
    try (DirectoryStream<Path> locks = Files.newDirectoryStream(dir, "*" + LOCK)) {
      for (Path path : locks) {
        String name = path.getFileName().toString();
        String key = name.substring(0, name.length() - LOCK.length());
        Optional<LockFile> lock = LockFile.tryAcquire(path);
        if (lock.isPresent()) {
          try (LockFile held = lock.get()) {
            if (!Files.exists(dir.resolve(key), LinkOption.NOFOLLOW_LINKS) && !hasPartials(key)) {
              held.deleteAndRelease();
            }
          }
        }
      }
    }
  }

  private boolean hasPartials(String key) throws IOException {
    try (DirectoryStream<Path> partials = Files.newDirectoryStream(dir, key + PARTIAL + "*")) {
      return partials.iterator().hasNext();
    }
  }

  /** Removes the bases that {@code tarball}'s replaced ones left, if unused; never waits. */
  private void removeReplaced(Path tarball, String current) {
    for (Base base : list()) {
      if (base.state() == State.REPLACED
          && base.tarball().equals(tarball)
          && !base.key().equals(current)
          && removeIfUnused(base)) {
        LOG.info("removed {}, the base of a replaced {}", base.root(), tarball);
      }
    }
  }

  /**
   * Removes the least recently used bases until all fit in the limit, never {@code kept} nor one in
   * use or busy; never waits.
   */
  private void evictBeyondLimit(String kept) {
    if (maxBytes.isEmpty()) {
      return;
    }
    List<Base> bases = list();
    long total = bases.stream().mapToLong(Base::bytes).sum();
    for (int i = bases.size() - 1; i >= 0 && total > maxBytes.getAsLong(); i--) {
      Base base = bases.get(i);
      if (!base.key().equals(kept) && removeIfUnused(base)) {
        LOG.info("removed {}, the least recently used base, to fit cache-max-size", base.root());
        total -= base.bytes();
      }
    }
    if (total > maxBytes.getAsLong()) {
      LOG.info(
          "the rootfs cache {} holds {} bytes, over cache-max-size ({}): the rest is in use"
              + " or busy",
          dir,
          total,
          maxBytes.getAsLong());
    }
  }

  /**
   * Removes a base unless a testbed uses it or another holds its lock (it is being claimed or
   * removed). A failure is logged, not thrown: the open that called this goes on regardless.
   */
  private boolean removeIfUnused(Base base) {
    try {
      Optional<LockFile> lock = LockFile.tryAcquire(lockOf(base.key()));
      if (lock.isEmpty()) {
        return false;
      }
      try (LockFile held = lock.get()) {
        if (!Files.isDirectory(base.root(), LinkOption.NOFOLLOW_LINKS) || inUse.test(base.root())) {
          return false;
        }
        remove(base.key(), held);
        return true;
      }
    } catch (IOException | RuntimeException e) {
      LOG.warn(
          "could not remove {}: {}",
          base.root(),
          e instanceof IOException io ? UchrootException.reason(io) : e.getMessage());
      return false;
    }
  }

  /** Removes a base, its metadata and its lock file; call with {@code lock}, its lock, held. */
  private void remove(String key, LockFile lock) throws IOException {
    removePartials(key);
    // Renamed out of the way first: a removal that fails halfway leaves a partial base, which
    // removeStalePartials takes, never a broken base that baseFor would hand out.
    Path doomed = dir.resolve(key + PARTIAL + "removed");
    Files.move(dir.resolve(key), doomed, StandardCopyOption.ATOMIC_MOVE);
    Files.deleteIfExists(dir.resolve(key + META));
    remover().removeNow(doomed);
    lock.deleteAndRelease();
  }

  /** Removes the partial bases of {@code key}; call with its lock held. */
  private void removePartials(String key) throws IOException {
    try (DirectoryStream<Path> partials = Files.newDirectoryStream(dir, key + PARTIAL + "*")) {
      for (Path partial : partials) {
        LOG.info("removing {}, left by an unpack or removal that did not finish", partial);
        remover().removeNow(partial);
      }
    }
  }

  private SafeRemover remover() {
    return new SafeRemover(mapping, libexecDir);
  }

  private Path lockOf(String key) {
    return dir.resolve(key + LOCK);
  }

  private Properties readMeta(Path meta) throws IOException {
    Properties p = new Properties();
    try (Reader in = Files.newBufferedReader(meta, StandardCharsets.UTF_8)) {
      p.load(in);
    }
    return p;
  }

  /** Replaces {@code KEY.meta} whole; call with the key's lock held. */
  private void writeMeta(String key, Properties meta) throws IOException {
    Path next = dir.resolve(key + META + ".new");
    try (Writer out = Files.newBufferedWriter(next, StandardCharsets.UTF_8)) {
      meta.store(out, "uchroot rootfs base");
    }
    Files.move(
        next,
        dir.resolve(key + META),
        StandardCopyOption.ATOMIC_MOVE,
        StandardCopyOption.REPLACE_EXISTING);
  }

  /**
   * What a tree takes on disk, as du(1) counts it, which measures it: allocated blocks, a file with
   * several links once, symbolic links not followed, one filesystem. What cannot be read is left
   * out rather than failing (du then says so, and exits 1): an unprivileged user's base has
   * directories of subordinate ids that the user may not enter. 0 for a tree that is not there.
   */
  static long sizeOf(Path libexecDir, Path root) {
    if (!Files.exists(root, LinkOption.NOFOLLOW_LINKS)) {
      return 0;
    }
    String out =
        HelperProcess.output(
            libexecDir,
            List.of("du", "--summarize", "--one-file-system", "-B1", "--", root.toString()));
    try {
      return Long.parseLong(out.split("\\s", 2)[0]);
    } catch (NumberFormatException e) {
      throw new UchrootException(
          "cannot measure " + root + ": du said " + OneLineMessage.of(out), e);
    }
  }

  private static Path realPath(Path tarball) {
    try {
      return tarball.toRealPath();
    } catch (IOException e) {
      throw new UchrootException(
          "cannot read tarball " + tarball + ": " + UchrootException.reason(e) + "; check -t", e);
    }
  }

  /** The key of a tarball's base, whose files' owners {@code mapping} decides. */
  static String keyOf(Path tarball, String normalUser, IdMapping mapping) {
    Path real = realPath(tarball);
    try {
      String identity =
          identityOf(real)
              + "\n"
              + normalUser
              + (mapping.baseTag().isEmpty() ? "" : "\n" + mapping.baseTag());
      String name = real.getFileName().toString().replaceAll("[^A-Za-z0-9_.-]", "_");
      return name + "-" + sha256(identity, 8);
    } catch (IOException e) {
      throw new UchrootException(
          "cannot read tarball " + tarball + ": " + UchrootException.reason(e) + "; check -t", e);
    }
  }

  /** What tells the file at a tarball's path from any other, or from itself before a change. */
  private static String tarballId(Path real) throws IOException {
    return sha256(identityOf(real), 16);
  }

  private static String identityOf(Path real) throws IOException {
    return String.join(
        "\n",
        real.toString(),
        Long.toString(Files.size(real)),
        Files.getLastModifiedTime(real).toString(),
        String.valueOf(Files.getAttribute(real, "unix:ctime")),
        String.valueOf(Files.getAttribute(real, "unix:ino")));
  }

  private static String sha256(String text, int bytes) {
    try {
      byte[] digest =
          MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(digest, 0, bytes);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
