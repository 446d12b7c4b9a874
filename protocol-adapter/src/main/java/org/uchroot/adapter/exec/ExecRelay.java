package org.uchroot.adapter.exec;

import java.io.BufferedInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.engine.ChannelStreams;
import org.uchroot.engine.Frame;
import org.uchroot.engine.FrameWriter;
import org.uchroot.engine.Job;
import org.uchroot.engine.Session;
import org.uchroot.engine.SessionRegistry;

/**
 * The exec socket of one session: every connection runs one command in the session's testbed and
 * relays its streams, signals and exit status in {@link Frame}s. The socket lives in a directory of
 * its own, mode 0700, and is itself mode 0600, so only its owner can run commands.
 *
 * <p>Threading: {@link #start} binds the socket and returns; an accept thread and one reader thread
 * per connection do the rest. The command's output is written by the engine's threads, one frame at
 * a time. A revert keeps the session and so the socket; {@link #close} removes it.
 */
public final class ExecRelay implements AutoCloseable {

  private static final Logger LOG = LoggerFactory.getLogger(ExecRelay.class);

  /** An argv the size of the largest a Linux execve takes, with room to spare. */
  private static final int MAX_ARGV = 16 << 20;

  private static final int MAX_STDIN_FRAME = 1 << 20;
  private static final int STDIN_BUFFER = 1 << 20;
  private static final AtomicInteger THREADS = new AtomicInteger();

  private final Path socket;
  private final Session session;
  private final ServerSocketChannel server;
  private final ExecutorService threads;
  private final Set<SocketChannel> connections = new HashSet<>();
  private final AtomicBoolean accepting = new AtomicBoolean(true);

  private ExecRelay(Path socket, Session session, ServerSocketChannel server) {
    this.socket = socket;
    this.session = session;
    this.server = server;
    this.threads =
        Executors.newCachedThreadPool(
            task -> {
              Thread thread = new Thread(task, "uchroot-exec-" + THREADS.incrementAndGet());
              thread.setDaemon(true);
              return thread;
            });
  }

  /**
   * Binds {@code socket} in the user's runtime directory (made with mode 0700 if missing) and
   * starts accepting.
   */
  public static ExecRelay start(Path socket, Session session) throws IOException {
    Files.deleteIfExists(socket);
    ServerSocketChannel server = SessionRegistry.bindPrivateSocket(socket);
    ExecRelay relay = new ExecRelay(socket, session, server);
    Thread acceptor = new Thread(relay::acceptLoop, "uchroot-exec-accept-" + session.id());
    acceptor.setDaemon(true);
    acceptor.start();
    LOG.debug("exec socket {} ready", socket);
    return relay;
  }

  public Path socket() {
    return socket;
  }

  /**
   * Removes the socket, so that no new command can connect; the commands already connected go on
   * and still report their status. The listening socket itself is closed by {@link #close}: that
   * waits for the accepting thread to wake up. Idempotent.
   */
  public void stopAccepting() {
    if (!accepting.getAndSet(false)) {
      return;
    }
    try {
      // The runtime directory stays: other servers of the user may be making sockets there.
      Files.deleteIfExists(socket);
    } catch (IOException e) {
      LOG.warn("cannot remove {}: {}", socket, e.getMessage());
    }
  }

  /** As {@link #close(Duration)} with five seconds. */
  @Override
  public void close() {
    close(Duration.ofSeconds(5));
  }

  /**
   * Stops accepting, gives the remaining connections {@code grace} to send their last frame (call
   * it once their commands have ended, after the session's close), then drops them.
   */
  public void close(Duration grace) {
    stopAccepting();
    try {
      server.close();
    } catch (IOException e) {
      LOG.debug("closing {}: {}", socket, e.toString());
    }
    long deadline = System.nanoTime() + grace.toNanos();
    synchronized (connections) {
      long left;
      while (!connections.isEmpty() && (left = deadline - System.nanoTime()) > 0) {
        try {
          connections.wait(Math.max(1, left / 1_000_000));
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          break;
        }
      }
      for (SocketChannel channel : connections) {
        closeQuietly(channel);
      }
    }
    threads.shutdown();
  }

  private void acceptLoop() {
    while (accepting.get()) {
      SocketChannel channel;
      try {
        channel = server.accept();
      } catch (ClosedChannelException e) {
        return;
      } catch (IOException e) {
        if (accepting.get()) {
          LOG.warn("exec socket {}: {}", socket, e.getMessage());
        }
        return;
      }
      synchronized (connections) {
        connections.add(channel);
      }
      try {
        threads.execute(() -> serve(channel));
      } catch (RejectedExecutionException e) {
        forget(channel);
      }
    }
  }

  private void forget(SocketChannel channel) {
    closeQuietly(channel);
    synchronized (connections) {
      connections.remove(channel);
      connections.notifyAll();
    }
  }

  private void serve(SocketChannel channel) {
    MDC.put("session", session.id().value());
    FrameWriter out = new FrameWriter(channel);
    InputStream in = new BufferedInputStream(ChannelStreams.input(channel));
    try {
      Frame first = Frame.read(in, MAX_ARGV);
      if (first == null) {
        forget(channel);
        return;
      }
      List<String> argv = first.type() == Frame.ARGV ? first.arguments() : List.of();
      if (argv.isEmpty()) {
        out.finish(Frame.failure("protocol error: the first frame must name a command"));
        forget(channel);
        return;
      }
      relay(channel, in, out, argv);
    } catch (Frame.Malformed e) {
      out.finish(Frame.failure("protocol error: " + e.getMessage()));
      forget(channel);
    } catch (IOException e) {
      LOG.debug("exec connection: {}", e.toString());
      forget(channel);
    } catch (RuntimeException e) {
      LOG.error("exec connection: {}", e.toString());
      out.finish(Frame.failure("internal error: " + e));
      forget(channel);
    } finally {
      MDC.clear();
    }
  }

  private void relay(SocketChannel channel, InputStream in, FrameWriter out, List<String> argv) {
    StdinPipe stdin = new StdinPipe(STDIN_BUFFER);
    JobStdio stdio = JobStdio.of(stdin, out.stream(Frame.STDOUT), out.stream(Frame.STDERR));
    LOG.debug("exec: {}", argv.get(0));
    Job job = session.start(argv, stdio);
    AtomicBoolean ended = new AtomicBoolean();
    job.result()
        .whenCompleteAsync(
            (status, error) -> {
              ended.set(true);
              stdin.closeWrite();
              out.finish(lastFrame(status, error));
              forget(channel);
            },
            this::runOffTheEngine);
    try {
      Frame frame;
      while ((frame = Frame.read(in, MAX_STDIN_FRAME)) != null) {
        switch (frame.type()) {
          case Frame.STDIN -> stdin.write(frame.payload(), 0, frame.payload().length);
          case Frame.STDIN_END -> stdin.closeWrite();
          case Frame.SIGNAL -> {
            LOG.debug(
                "exec: client got signal {}, interrupting {}", signalNumber(frame), argv.get(0));
            job.interrupt();
          }
          default -> throw new Frame.Malformed("unexpected frame '" + (char) frame.type() + "'");
        }
      }
      clientGone(job, stdin, out, ended, "closed the connection");
    } catch (Frame.Malformed e) {
      // Said to the client in place of the status; the command it can no longer drive stops.
      out.finish(Frame.failure("protocol error: " + e.getMessage()));
      clientGone(job, stdin, out, ended, e.getMessage());
    } catch (IOException e) {
      clientGone(job, stdin, out, ended, e.toString());
    }
  }

  /** A client that leaves before the status leaves its command without a reader: stop it. */
  private static void clientGone(
      Job job, StdinPipe stdin, FrameWriter out, AtomicBoolean ended, String why) {
    stdin.closeWrite();
    if (!ended.get()) {
      LOG.debug("exec client {} before its command ended: interrupting it", why);
      out.discard();
      job.interrupt();
    }
  }

  /**
   * The last frame is written away from the engine's threads, which a client that has stopped
   * reading must not hold up; after {@link #close} the pool is gone and the write happens inline.
   */
  private void runOffTheEngine(Runnable task) {
    try {
      threads.execute(task);
    } catch (RejectedExecutionException e) {
      task.run();
    }
  }

  private static Frame lastFrame(ExitStatus status, Throwable error) {
    if (error == null) {
      return Frame.exit(status.shellStatus());
    }
    return Frame.failure(OneLineMessage.of(error));
  }

  private static int signalNumber(Frame frame) {
    return frame.payload().length > 0 ? frame.payload()[0] & 0xff : 0;
  }

  private static void closeQuietly(SocketChannel channel) {
    try {
      channel.close();
    } catch (IOException e) {
      // Nothing more can be said to this client.
    }
  }
}
