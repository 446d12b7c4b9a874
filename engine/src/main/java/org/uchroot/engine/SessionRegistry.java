package org.uchroot.engine;

import java.io.IOException;
import java.io.Reader;
import java.io.UncheckedIOException;
import java.io.Writer;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import org.uchroot.actors.SessionId;

/**
 * Records every testbed on disk, with the process that owns it, so that the testbeds of a server
 * that was killed can be found and removed later. One small file per session in the state
 * directory; written before anything is unpacked and deleted after the rootfs is gone. Thread-safe:
 * each operation works on one file and replaces it atomically.
 */
public final class SessionRegistry {

  private static final String SUFFIX = ".session";

  private final Path dir;
  private final Path runtimeDir;
  private final Path libexecDir;

  /** The records this registry made, by rootfs: forgetting one of them reads no other. */
  private final Map<Path, Path> recordedHere = new ConcurrentHashMap<>();

  /**
   * @param libexecDir where {@code uchroot-jobd} is, which starts the helpers of a removal
   */
  public SessionRegistry(Path dir, Path runtimeDir, Path libexecDir) {
    this.dir = dir;
    this.runtimeDir = runtimeDir;
    this.libexecDir = libexecDir;
  }

  /** The registry of the calling user, where its engines record their sessions. */
  public static SessionRegistry of(EngineConfig config) {
    return new SessionRegistry(config.stateDir(), config.runtimeDir(), config.libexecDir());
  }

  /** A recorded testbed, and whether the process that owns it still runs. */
  public record Entry(
      String session,
      long ownerPid,
      Instant ownerStart,
      Path rootfs,
      Path runtimeDir,
      Optional<Path> base,
      boolean live) {}

  /**
   * Where a session's socket called {@code name} is: every socket of a session is a file {@code
   * SESSION.NAME.sock} directly in the user's runtime directory, so that an orphan's are found by
   * its name alone.
   */
  public static Path socketOf(Path runtimeDir, SessionId session, String name) {
    return runtimeDir.resolve(session.value() + "." + name + ".sock");
  }

  /**
   * Makes the user's runtime directory (mode 0700) where it is missing, and checks that it is a
   * real directory of the user's that nobody else may enter: it may sit in a world-writable /tmp,
   * and whoever could write in it could put a socket of their own in a session's socket's place and
   * see every command.
   */
  public static void requirePrivateRuntimeDir(Path runtimeDir) throws IOException {
    Set<PosixFilePermission> owner = PosixFilePermissions.fromString("rwx------");
    Files.createDirectories(runtimeDir, PosixFilePermissions.asFileAttribute(owner));
    int uid = (Integer) Files.getAttribute(runtimeDir, "unix:uid", LinkOption.NOFOLLOW_LINKS);
    if (uid != Host.uid() || !Files.isDirectory(runtimeDir, LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException(runtimeDir + " is not a directory of uid " + Host.uid());
    }
    if (!Files.getPosixFilePermissions(runtimeDir, LinkOption.NOFOLLOW_LINKS).equals(owner)) {
      Files.setPosixFilePermissions(runtimeDir, owner);
    }
  }

  /**
   * Binds a Unix socket at {@code socket}, in the user's private runtime directory (made as {@link
   * #requirePrivateRuntimeDir} makes it), with mode 0600: only the user may connect. Whatever was
   * at that path is the caller's to remove first.
   */
  public static ServerSocketChannel bindPrivateSocket(Path socket) throws IOException {
    requirePrivateRuntimeDir(socket.getParent());
    ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      server.bind(UnixDomainSocketAddress.of(socket));
      Files.setPosixFilePermissions(socket, PosixFilePermissions.fromString("rw-------"));
    } catch (IOException e) {
      server.close();
      throw e;
    }
    return server;
  }

  void record(SessionId session, Path rootfs) {
    record(session, rootfs, Optional.empty());
  }

  /** Records the session again, with the cached base its overlay uses, so prune keeps it. */
  void record(SessionId session, Path rootfs, Optional<Path> base) {
    ProcessHandle self = ProcessHandle.current();
    Properties p = new Properties();
    p.setProperty("session", session.value());
    p.setProperty("owner-pid", Long.toString(self.pid()));
    p.setProperty("owner-start", self.info().startInstant().map(Instant::toString).orElse(""));
    p.setProperty("rootfs", rootfs.toString());
    p.setProperty("runtime-dir", runtimeDir.toString());
    base.ifPresent(b -> p.setProperty("base", b.toString()));
    try {
      Files.createDirectories(dir);
      Path file = dir.resolve(session.value() + SUFFIX);
      Path tmp = dir.resolve(session.value() + SUFFIX + ".tmp");
      try (Writer out = Files.newBufferedWriter(tmp)) {
        p.store(out, "uchroot testbed");
      }
      Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      recordedHere.put(rootfs, file);
    } catch (IOException e) {
      throw new UchrootException(
          "cannot record the session in " + dir + ": " + UchrootException.reason(e), e);
    }
  }

  /** Forgets the session whose rootfs this was, once the rootfs is gone. */
  void forget(Path rootfs) {
    Path file = recordedHere.remove(rootfs);
    if (file != null) {
      try {
        Files.deleteIfExists(file);
        return;
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    for (Entry entry : list()) {
      if (entry.rootfs().equals(rootfs)) {
        try {
          Files.deleteIfExists(dir.resolve(entry.session() + SUFFIX));
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
    }
  }

  /** Every recorded session, oldest owner first. */
  public List<Entry> list() {
    List<Entry> entries = new ArrayList<>();
    if (!Files.isDirectory(dir)) {
      return entries;
    }
    try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*" + SUFFIX)) {
      for (Path file : files) {
        read(file).ifPresent(entries::add);
      }
    } catch (IOException e) {
      throw new UchrootException("cannot read " + dir + ": " + UchrootException.reason(e), e);
    }
    entries.sort(Comparator.comparing(Entry::ownerStart).thenComparing(Entry::session));
    return entries;
  }

  /** Whether the overlay of a testbed whose owner still runs has {@code base} as its base. */
  public boolean usesBase(Path base) {
    return list().stream().anyMatch(e -> e.live() && e.base().filter(base::equals).isPresent());
  }

  public List<Entry> orphaned() {
    return list().stream().filter(e -> !e.live()).toList();
  }

  /**
   * Removes an orphaned session's rootfs, sockets and record, safely (see {@link SafeRemover});
   * refuses a live one. Blocks.
   */
  public void cleanup(String session) {
    Entry entry =
        list().stream()
            .filter(e -> e.session().equals(session))
            .findFirst()
            .orElseThrow(() -> new UchrootException("no such session: " + session));
    if (entry.live()) {
      throw new UchrootException(
          "session "
              + session
              + " is live (owned by pid "
              + entry.ownerPid()
              + "); close it instead");
    }
    SafeRemover.ofCaller(libexecDir).removeNow(entry.rootfs());
    try {
      // The sockets of a server that was killed with its job servers.
      Path sockets = entry.runtimeDir();
      if (Files.isDirectory(sockets, LinkOption.NOFOLLOW_LINKS)) {
        try (DirectoryStream<Path> files =
            Files.newDirectoryStream(sockets, entry.session() + ".*.sock")) {
          for (Path socket : files) {
            Files.deleteIfExists(socket);
          }
        }
      }
      Files.deleteIfExists(dir.resolve(entry.session() + SUFFIX));
    } catch (IOException e) {
      throw new UchrootException(
          "cannot clean up session " + session + ": " + UchrootException.reason(e), e);
    }
  }

  private static Optional<Entry> read(Path file) {
    Properties p = new Properties();
    try (Reader in = Files.newBufferedReader(file)) {
      p.load(in);
      long pid = Long.parseLong(p.getProperty("owner-pid"));
      String start = p.getProperty("owner-start", "");
      Instant ownerStart = start.isEmpty() ? Instant.EPOCH : Instant.parse(start);
      return Optional.of(
          new Entry(
              p.getProperty("session"),
              pid,
              ownerStart,
              Path.of(p.getProperty("rootfs")),
              Path.of(p.getProperty("runtime-dir")),
              Optional.ofNullable(p.getProperty("base")).map(Path::of),
              isAlive(pid, ownerStart)));
    } catch (IOException | RuntimeException e) {
      // A record being written or a stranger's file: not a session we can speak for.
      return Optional.empty();
    }
  }

  /**
   * The owner runs if its pid exists, started when recorded (pids are reused) and has not died: a
   * killed owner that its parent has not reaped yet holds nothing any more.
   */
  private static boolean isAlive(long pid, Instant recordedStart) {
    return ProcessHandle.of(pid)
            .flatMap(h -> h.info().startInstant())
            .map(start -> start.equals(recordedStart))
            .orElse(false)
        && !isZombie(pid);
  }

  private static boolean isZombie(long pid) {
    try {
      String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
      return stat.substring(stat.lastIndexOf(')') + 2).startsWith("Z");
    } catch (IOException | RuntimeException e) {
      return false;
    }
  }
}
