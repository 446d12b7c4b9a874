package org.uchroot.engine;

import java.io.IOException;
import java.io.Reader;
import java.io.Writer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.OverlappingFileLockException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.locks.ReentrantLock;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Read-only base trees, one per tarball, shared by the overlay testbeds of every session and every
 * server process of the user. A base is keyed by the tarball's path, size, mtime, ctime and inode,
 * so a changed tarball gets a new base. It is unpacked under a lock into a temporary directory and
 * renamed into place when complete: a half-unpacked base is never used. Thread-safe.
 */
public final class RootfsCache {

  private static final Logger LOG = LoggerFactory.getLogger(RootfsCache.class);
  private static final String META = ".meta";
  private static final ConcurrentHashMap<Path, ReentrantLock> LOCKS = new ConcurrentHashMap<>();

  private final Path dir;
  private final IdMapping mapping;
  private final Path libexecDir;

  /** @param libexecDir where the job server is, which completes the bases' /dev */
  public RootfsCache(Path dir, IdMapping mapping, Path libexecDir) {
    this.dir = dir;
    this.mapping = mapping;
    this.libexecDir = libexecDir;
  }

  public static RootfsCache of(EngineConfig config) {
    return new RootfsCache(config.cacheDir(), Host.idMapping(config), config.libexecDir());
  }

  /** What follows a key in the name of a base being unpacked. */
  private static final String PARTIAL = ".partial-";

  private static final Set<PosixFilePermission> PRIVATE =
      PosixFilePermissions.fromString("rwx------");

  /** A cached base. */
  public record Base(String key, Path root, Path tarball, long bytes, Instant lastUsed) {}

  /**
   * The base tree of {@code tarball}, unpacked (with {@code normalUser} created in it) if it is not
   * cached yet. Blocks, possibly for as long as unpacking takes.
   */
  Path baseFor(Path tarball, String normalUser) {
    String key = keyOf(tarball, normalUser, mapping);
    Path base = dir.resolve(key);
    ReentrantLock local = LOCKS.computeIfAbsent(base, k -> new ReentrantLock());
    local.lock();
    try {
      Files.createDirectories(dir);
      // Private all the way down: a base holds what its tarball held, setuid files included,
      // which no other user may reach. Caches made before are made private too.
      Files.setPosixFilePermissions(dir, PRIVATE);
      // The file lock keeps other server processes out; the local lock other threads of this one,
      // since a JVM holds file locks per process.
      try (FileChannel channel =
              FileChannel.open(
                  dir.resolve(key + ".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
          FileLock lock = channel.lock()) {
        if (!Files.isDirectory(base, LinkOption.NOFOLLOW_LINKS)) {
          // Under the lock, any partial base of this key is what a killed server left.
          removePartials(key);
          unpack(tarball, normalUser, key, base);
        }
        touch(key);
        return base;
      }
    } catch (IOException e) {
      throw new UchrootException("cannot use the rootfs cache " + dir + ": " + UchrootException.reason(e), e);
    } finally {
      local.unlock();
    }
  }

  private void unpack(Path tarball, String normalUser, String key, Path base) throws IOException {
    long started = System.nanoTime();
    Path partial = Files.createTempDirectory(dir, key + PARTIAL);
    try {
      mapping.giveToTestbedRoot(partial);
      Unpacker.unpack(mapping, libexecDir, tarball, partial, normalUser);
      // tar gave it the mode of the tarball's top directory.
      Files.setPosixFilePermissions(partial, PRIVATE);
      Properties meta = new Properties();
      meta.setProperty("tarball", tarball.toAbsolutePath().toString());
      meta.setProperty("created", Instant.now().toString());
      try (Writer out = Files.newBufferedWriter(dir.resolve(key + META), StandardCharsets.UTF_8)) {
        meta.store(out, "uchroot rootfs base");
      }
      Files.move(partial, base, StandardCopyOption.ATOMIC_MOVE);
    } catch (RuntimeException | IOException e) {
      new SafeRemover(mapping, libexecDir, null, Runnable::run).removeNow(partial);
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
        Properties p = new Properties();
        try (Reader in = Files.newBufferedReader(meta)) {
          p.load(in);
        }
        bases.add(
            new Base(
                key,
                root,
                Path.of(p.getProperty("tarball", "?")),
                Files.size(meta),
                Files.getLastModifiedTime(meta).toInstant()));
      }
    } catch (IOException e) {
      throw new UchrootException("cannot read the rootfs cache " + dir + ": " + UchrootException.reason(e), e);
    }
    bases.sort((a, b) -> b.lastUsed().compareTo(a.lastUsed()));
    return bases;
  }

  /**
   * Removes every base not in {@code inUse} (and leftovers of interrupted unpacks), each under its
   * lock so that no server is unpacking or starting on it meanwhile. Blocks. Returns what went.
   */
  public List<Path> prune(Set<Path> inUse) {
    List<Path> removed = new ArrayList<>();
    SafeRemover remover = new SafeRemover(mapping, libexecDir, null, Runnable::run);
    for (Base base : list()) {
      if (inUse.contains(base.root())) {
        continue;
      }
      try (FileChannel channel =
              FileChannel.open(
                  dir.resolve(base.key() + ".lock"),
                  StandardOpenOption.CREATE,
                  StandardOpenOption.WRITE);
          FileLock lock = channel.lock()) {
        remover.removeNow(base.root());
        Files.deleteIfExists(dir.resolve(base.key() + META));
        removed.add(base.root());
      } catch (IOException e) {
        throw new UchrootException("cannot prune " + base.root() + ": " + UchrootException.reason(e), e);
      }
    }
    removed.addAll(removeStalePartials());
    return removed;
  }

  /**
   * Removes the partial bases of unpacks that did not finish (their server was killed), never one
   * being unpacked now. Blocks. Returns what went.
   */
  public List<Path> removeStalePartials() {
    List<Path> removed = new ArrayList<>();
    SafeRemover remover = new SafeRemover(mapping, libexecDir, null, Runnable::run);
    try (DirectoryStream<Path> partials = Files.newDirectoryStream(dir, "*" + PARTIAL + "*")) {
      for (Path partial : partials) {
        String name = partial.getFileName().toString();
        String key = name.substring(0, name.indexOf(PARTIAL));
        // A partial base whose lock is free is a killed server's; one whose lock is held is
        // being unpacked right now, and stays.
        try (FileChannel channel =
                FileChannel.open(
                    dir.resolve(key + ".lock"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
            FileLock lock = channel.tryLock()) {
          if (lock != null && Files.exists(partial, LinkOption.NOFOLLOW_LINKS)) {
            remover.removeNow(partial);
            removed.add(partial);
          }
        } catch (OverlappingFileLockException e) {
          // This process is unpacking it.
        }
      }
    } catch (IOException e) {
      // No cache directory: nothing was left over.
    }
    return removed;
  }

  /** Removes the partial bases of {@code key}; call with its lock held. */
  private void removePartials(String key) throws IOException {
    SafeRemover remover = new SafeRemover(mapping, libexecDir, null, Runnable::run);
    try (DirectoryStream<Path> partials = Files.newDirectoryStream(dir, key + PARTIAL + "*")) {
      for (Path partial : partials) {
        LOG.info("removing {}, left by an unpack that did not finish", partial);
        remover.removeNow(partial);
      }
    }
  }

  /** The key of a tarball's base, whose files' owners {@code mapping} decides. */
  static String keyOf(Path tarball, String normalUser, IdMapping mapping) {
    try {
      Path real = tarball.toRealPath();
      Object ino = Files.getAttribute(real, "unix:ino");
      Object ctime = Files.getAttribute(real, "unix:ctime");
      String identity =
          String.join(
              "\n",
              real.toString(),
              Long.toString(Files.size(real)),
              Files.getLastModifiedTime(real).toString(),
              String.valueOf(ctime),
              String.valueOf(ino),
              normalUser)
              + (mapping.baseTag().isEmpty() ? "" : "\n" + mapping.baseTag());
      byte[] digest =
          MessageDigest.getInstance("SHA-256").digest(identity.getBytes(StandardCharsets.UTF_8));
      String name = real.getFileName().toString().replaceAll("[^A-Za-z0-9_.-]", "_");
      return name + "-" + HexFormat.of().formatHex(digest, 0, 8);
    } catch (IOException e) {
      throw new UchrootException("cannot read tarball " + tarball + ": " + UchrootException.reason(e), e);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
