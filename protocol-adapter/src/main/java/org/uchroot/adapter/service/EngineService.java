package org.uchroot.adapter.service;

import java.io.IOException;
import java.io.PrintStream;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.UserPrincipal;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.adapter.virt.VirtServer;
import org.uchroot.engine.Engine;
import org.uchroot.engine.Frame;
import org.uchroot.engine.FrameWriter;
import org.uchroot.engine.SessionRegistry;
import org.uchroot.engine.UchrootException;

/**
 * The shared engine of one user: every frontend of that user ({@code autopkgtest-virt-uchroot},
 * {@code uchroot run}) has its virtualisation server here, on one actor system, instead of in a JVM
 * of its own. It listens on {@code RUNTIME/engine.sock} (mode 0600 in the user's private runtime
 * directory), serves only its own user (SO_PEERCRED), and ends by itself when it has had no
 * frontend for its idle time, or when its socket is removed (a logout empties the runtime
 * directory).
 *
 * <p>Threading: {@link #serve} accepts on the calling thread; each connection has a thread of its
 * own; a watcher thread checks the socket and the idle time once a second.
 */
public final class EngineService {

  /** The socket's name in the runtime directory. */
  public static final String SOCKET = "engine.sock";

  /** Taken by whoever starts an engine, so that two clients starting at once make one. */
  public static final String START_LOCK = "engine.lock";

  private static final Logger LOG = LoggerFactory.getLogger(EngineService.class);
  private static final Duration WATCH_INTERVAL = Duration.ofSeconds(1);

  /**
   * Runs a frontend's command line ({@code virt-server ARGS} or {@code run ARGS}); returns its exit
   * status.
   */
  @FunctionalInterface
  public interface FrontendCommand {
    int run(EngineClient client, List<String> argv);
  }

  private final Engine engine;
  private final ServerSocketChannel server;
  private final Path socket;
  private final Object socketKey;
  private final UserPrincipal owner;
  private final Duration idleTimeout;
  private final FrontendCommand frontendCommand;
  private final Instant started = Instant.now();

  /** The live connections and their threads. */
  private final Map<FrontendConnection, Thread> connections = new ConcurrentHashMap<>();

  private final AtomicInteger connectionNumbers = new AtomicInteger();
  private final CountDownLatch stopped = new CountDownLatch(1);
  private volatile boolean stopping;
  private volatile Instant idleSince = Instant.now();
  private volatile String stopReason = "";

  private EngineService(
      Engine engine,
      ServerSocketChannel server,
      Path socket,
      Duration idleTimeout,
      FrontendCommand frontendCommand)
      throws IOException {
    this.engine = engine;
    this.server = server;
    this.socket = socket;
    this.socketKey = identity(socket);
    this.owner = Files.getOwner(socket, LinkOption.NOFOLLOW_LINKS);
    this.idleTimeout = idleTimeout;
    this.frontendCommand = frontendCommand;
  }

  /** The socket of the user's engine. */
  public static Path socketIn(Path runtimeDir) {
    return runtimeDir.resolve(SOCKET);
  }

  /**
   * Binds the user's engine socket, replacing one that an engine killed left behind.
   *
   * @throws UchrootException if an engine of the user already listens there
   */
  public static ServerSocketChannel bind(Path runtimeDir) throws IOException {
    SessionRegistry.requirePrivateRuntimeDir(runtimeDir);
    Path socket = socketIn(runtimeDir);
    if (Files.exists(socket, LinkOption.NOFOLLOW_LINKS)) {
      if (answers(socket)) {
        throw new UchrootException(
            "an engine already listens on " + socket + "; `uchroot engine status` describes it");
      }
      Files.delete(socket);
    }
    return SessionRegistry.bindPrivateSocket(socket);
  }

  /** Whether an engine accepts connections on {@code socket}. */
  public static boolean answers(Path socket) {
    try (SocketChannel probe = SocketChannel.open(UnixDomainSocketAddress.of(socket))) {
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * From now on, log lines about a frontend go to its stderr, the others to {@code engineLog}: call
   * once, before the engine starts.
   */
  public static void routeLogs(PrintStream engineLog) {
    FrontendLogs.install(engineLog);
  }

  /** Serves frontends on {@code server}, bound by {@link #bind}, with {@code engine}. */
  public static EngineService on(
      ServerSocketChannel server,
      Path runtimeDir,
      Engine engine,
      Duration idleTimeout,
      FrontendCommand frontendCommand)
      throws IOException {
    return new EngineService(engine, server, socketIn(runtimeDir), idleTimeout, frontendCommand);
  }

  /**
   * Accepts frontends until the engine stops; returns why it stopped, once every testbed is gone.
   */
  public String serve() {
    Thread watcher = new Thread(this::watch, "uchroot-engine-watch");
    watcher.setDaemon(true);
    watcher.start();
    LOG.info(
        "engine {} listening on {} (idle timeout {})",
        ProcessHandle.current().pid(),
        socket,
        spoken(idleTimeout));
    while (!stopping) {
      SocketChannel channel;
      try {
        channel = server.accept();
      } catch (IOException e) {
        if (!stopping) {
          stop("cannot accept connections: " + OneLineMessage.of(e), null);
        }
        break;
      }
      accept(channel);
    }
    try {
      stopped.await();
      // The connection that asked for the stop says it is done.
      for (Thread connection : connections.values()) {
        connection.join(Duration.ofSeconds(10).toMillis());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    return stopReason;
  }

  private void accept(SocketChannel channel) {
    String refusal = refusal(channel);
    if (refusal != null) {
      LOG.warn("{}", refusal);
      FrameWriter writer = new FrameWriter(channel);
      writer.finish(Frame.failure(refusal));
      closeQuietly(channel);
      return;
    }
    FrontendConnection connection;
    try {
      connection = new FrontendConnection("f" + connectionNumbers.incrementAndGet(), this, channel);
    } catch (IOException e) {
      closeQuietly(channel);
      return;
    }
    Thread thread =
        new Thread(
            () -> {
              try {
                connection.serve();
              } finally {
                ended(connection);
              }
            },
            "uchroot-frontend-" + connection.id());
    synchronized (this) {
      if (stopping) {
        // Accepted as the engine stopped idle: the frontend, which got no frame, tries again.
        closeQuietly(channel);
        return;
      }
      connections.put(connection, thread);
    }
    thread.start();
  }

  private synchronized void ended(FrontendConnection connection) {
    connections.remove(connection);
    if (connections.isEmpty()) {
      idleSince = Instant.now();
    }
  }

  /** Why the peer may not use this engine, or null: only the engine's own user may. */
  private String refusal(SocketChannel channel) {
    try {
      UnixDomainPrincipal peer = channel.getOption(ExtendedSocketOptions.SO_PEERCRED);
      if (peer.user().equals(owner)) {
        return null;
      }
      return "uchroot engine: refusing a client of user "
          + peer.user().getName()
          + ": this engine serves user "
          + owner.getName()
          + " only; every user's clients start an engine of their own";
    } catch (IOException | UnsupportedOperationException e) {
      return "uchroot engine: cannot tell who the client is: " + OneLineMessage.of(e);
    }
  }

  Engine engine() {
    return engine;
  }

  FrontendCommand frontendCommand() {
    return frontendCommand;
  }

  /** What {@code uchroot engine status} prints; {@code asking} is its own connection. */
  String status(FrontendConnection asking) {
    List<String> lines = new ArrayList<>();
    lines.add("pid: " + ProcessHandle.current().pid());
    lines.add("socket: " + socket);
    lines.add("uptime: " + spoken(Duration.between(started, Instant.now())));
    lines.add("frontends: " + (connections.size() - (connections.containsKey(asking) ? 1 : 0)));
    lines.add("idle timeout: " + spoken(idleTimeout));
    lines.add("memory: " + residentMemory());
    return String.join("\n", lines) + "\n";
  }

  String stopping() {
    return "uchroot engine: stopping engine "
        + ProcessHandle.current().pid()
        + ": closing the testbeds of "
        + (connections.size() - 1)
        + " frontend(s)\n";
  }

  /** Stops the engine, as {@link #stop(String, FrontendConnection)} does: for signals. */
  public void stop(String reason) {
    stop(reason, null);
  }

  /**
   * Stops the engine: no new frontend, each one's testbed closed as SIGTERM closes it, then the
   * engine's sessions, then the socket removed. {@code asking} is the connection that asked, which
   * is left to answer. Blocks until done; idempotent.
   */
  void stop(String reason, FrontendConnection asking) {
    if (markStopping(reason, false)) {
      finishStop(reason, asking);
    }
  }

  /**
   * Whether this call is the one that stops the engine; with {@code onlyIfIdle}, only when no
   * frontend has been connected for the idle time, decided against {@link #accept} at once.
   */
  private synchronized boolean markStopping(String reason, boolean onlyIfIdle) {
    if (stopping
        || onlyIfIdle
            && (!connections.isEmpty()
                || Duration.between(idleSince, Instant.now()).compareTo(idleTimeout) < 0)) {
      return false;
    }
    stopping = true;
    stopReason = reason;
    return true;
  }

  private void finishStop(String reason, FrontendConnection asking) {
    LOG.info("engine stopping: {}", reason);
    closeQuietly(server);
    List<Thread> ends = new ArrayList<>();
    for (FrontendConnection connection : connections.keySet()) {
      if (connection != asking) {
        Thread end =
            new Thread(
                () ->
                    connection.end(
                        VirtServer.EXIT_FAILURE,
                        "uchroot engine stopped (" + reason + "): the testbed was closed"),
                "uchroot-engine-stop-" + connection.id());
        end.start();
        ends.add(end);
      }
    }
    for (Thread end : ends) {
      try {
        end.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }
    try {
      engine.close();
    } catch (RuntimeException e) {
      LOG.error("{}", OneLineMessage.of(e));
    }
    removeOwnSocket();
    stopped.countDown();
  }

  private void watch() {
    while (!stopping) {
      try {
        Thread.sleep(WATCH_INTERVAL.toMillis());
      } catch (InterruptedException e) {
        return;
      }
      if (!socketKey.equals(identityOrNull(socket))) {
        stop("its socket " + socket + " was removed or replaced", null);
      } else {
        String idle = "no frontend for " + spoken(idleTimeout);
        if (markStopping(idle, true)) {
          finishStop(idle, null);
        }
      }
    }
  }

  /** Removes the socket if it is still this engine's: a new engine may have bound its own there. */
  private void removeOwnSocket() {
    if (socketKey.equals(identityOrNull(socket))) {
      try {
        Files.deleteIfExists(socket);
      } catch (IOException e) {
        LOG.warn("cannot remove {}: {}", socket, OneLineMessage.of(e));
      }
    }
  }

  private static Object identity(Path path) throws IOException {
    return Files.readAttributes(path, "unix:dev,ino", LinkOption.NOFOLLOW_LINKS);
  }

  private static Object identityOrNull(Path path) {
    try {
      return identity(path);
    } catch (NoSuchFileException e) {
      return null;
    } catch (IOException e) {
      return null;
    }
  }

  private static String residentMemory() {
    try {
      for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
        if (line.startsWith("VmRSS:")) {
          long kib = Long.parseLong(line.replaceAll("[^0-9]", ""));
          return String.format(Locale.ROOT, "%.1f MiB resident", kib / 1024.0);
        }
      }
    } catch (IOException | NumberFormatException e) {
      // Said below.
    }
    return "unknown";
  }

  private static String spoken(Duration duration) {
    long seconds = duration.toSeconds();
    if (seconds < 60) {
      return seconds + "s";
    }
    if (seconds < 3600) {
      return seconds / 60 + "m" + (seconds % 60 == 0 ? "" : seconds % 60 + "s");
    }
    return seconds / 3600 + "h" + (seconds % 3600 / 60) + "m";
  }

  private static void closeQuietly(java.io.Closeable closeable) {
    try {
      closeable.close();
    } catch (IOException e) {
      // Nothing more to do.
    }
  }
}
