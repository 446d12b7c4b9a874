package org.uchroot.engine;

import java.io.ByteArrayOutputStream;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobId;
import org.uchroot.actors.JobLauncher;
import org.uchroot.actors.JobSpec;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.Signal;
import org.uchroot.actors.Testbed;

/**
 * Starts each command through the session's job server ({@code uchroot-jobd}, see its source for
 * the frames): one connection per command, which the server answers with the command's output and,
 * once no process of the command is left, its exit status. Joining the namespaces and preparing the
 * rootfs were done once, when the session started, so a command costs a connection, a clone (its
 * own pid namespace), a vfork and an exec.
 *
 * <p>Threads: {@link #launch} connects and sends the command without blocking, on the caller's
 * thread, so that the command starts without waiting for a thread to wake up; one io thread per
 * command then reads its output for its whole life, and a stdin pump on the io executor runs until
 * the command's stdin ends. {@link RunningJob#signal} never blocks.
 */
final class LinuxJobLauncher implements JobLauncher {

  private static final Logger LOG = LoggerFactory.getLogger(LinuxJobLauncher.class);

  /** The job server writes at most 32 KiB of output per frame; anything far larger is garbage. */
  private static final int MAX_FRAME = 1 << 20;

  private static final int STDIN_CHUNK = 32768;

  /**
   * How the job server names a host file so that it resolves as this process sees it: through our
   * {@code /proc/PID/root}, which sees past mounts made after the session's mount namespace was
   * copied. A process in a user namespace may not follow another namespace's {@code /proc/PID/root}
   * (commoncap), so unprivileged sessions open the path in their copy of the host's mounts.
   */
  private static final String OUR_ROOT =
      Host.isRoot() ? "/proc/" + ProcessHandle.current().pid() + "/root" : "";

  private final Executor io;

  /**
   * Everything a job needs is in the session's sandbox; nothing here blocks for long.
   *
   * @param io runs the relays of the jobs' streams, two threads per running job
   */
  LinuxJobLauncher(Executor io) {
    this.io = io;
  }

  @Override
  public CompletionStage<RunningJob> launch(Testbed testbed, JobId id, JobSpec spec) {
    NamespaceSandbox sandbox = NamespaceSandbox.of(testbed);
    CompletableFuture<Void> ended = new CompletableFuture<>();
    LinuxJob job;
    try {
      JobSpec sent = sandbox.opensHostFiles() ? spec : withFilesRelayed(spec, ended);
      job = LinuxJob.connect(id, sandbox.jobSocket(), sent, io);
    } catch (RuntimeException e) {
      ended.complete(null);
      return CompletableFuture.failedFuture(e);
    }
    job.finished().whenComplete((status, error) -> ended.complete(null));
    LOG.debug("job {} started: {}", id, spec.argv());
    // The pump first: a reader that takes the last io thread would otherwise wait for output
    // that waits for stdin that waits for a thread.
    job.ready.thenRunAsync(job::pumpStdin, io);
    spec.stdio()
        .terminal()
        .ifPresent(terminal -> job.ready.thenRun(() -> terminal.onResize(job::resize)));
    io.execute(job::run);
    return CompletableFuture.completedFuture(job);
  }

  /**
   * The command with its host files opened here and relayed as its stdin and stdout, for a job
   * server whose root is not ours: the testbed's root of a root session is another user to the
   * host, and must not open what only the host's root may. The files close with the job.
   */
  private static JobSpec withFilesRelayed(JobSpec spec, CompletionStage<Void> ended) {
    JobStdio stdio = spec.stdio();
    if (stdio.stdinFile().isEmpty() && stdio.stdoutFile().isEmpty()) {
      return spec;
    }
    InputStream stdin = stdio.stdin();
    OutputStream stdout = stdio.stdout();
    Path file = null;
    try {
      if (stdio.stdinFile().isPresent()) {
        file = stdio.stdinFile().get();
        stdin = Files.newInputStream(file);
      }
      if (stdio.stdoutFile().isPresent()) {
        file = stdio.stdoutFile().get();
        stdout = Files.newOutputStream(file);
        OutputStream opened = stdout;
        ended.thenRun(() -> closeQuietly(opened));
      }
    } catch (IOException e) {
      closeQuietly(stdin);
      throw new UchrootException("cannot open " + file + ": " + UchrootException.reason(e), e);
    }
    return new JobSpec(
        spec.argv(),
        new JobStdio.Streams(stdin, stdout, stdio.stderr(), Optional.empty(), Optional.empty()));
  }

  private static void closeQuietly(Closeable stream) {
    try {
      stream.close();
    } catch (IOException e) {
      // Closed with the job: nothing is left to lose.
    }
  }

  /**
   * What the job server gets first: a '<' and a '>' frame for the host files that the command's
   * stdin and stdout are, if any, or a 't' frame for a pseudo-terminal of the caller's size, then
   * the command.
   */
  private static byte[] request(JobSpec spec) {
    ByteArrayOutputStream frames = new ByteArrayOutputStream();
    spec.stdio()
        .terminal()
        .ifPresent(
            terminal -> frames.writeBytes(sizeFrame(Frame.JOB_TERMINAL, terminal.size()).array()));
    spec.stdio()
        .stdinFile()
        .ifPresent(file -> frames.writeBytes(fileFrame(Frame.JOB_STDIN_FILE, file)));
    spec.stdio()
        .stdoutFile()
        .ifPresent(file -> frames.writeBytes(fileFrame(Frame.JOB_STDOUT_FILE, file)));
    frames.writeBytes(argvFrame(spec));
    return frames.toByteArray();
  }

  /** A host file for the job server to open, named as {@link #OUR_ROOT} says. */
  private static byte[] fileFrame(byte type, Path file) {
    byte[] path = (OUR_ROOT + file.toAbsolutePath()).getBytes(StandardCharsets.UTF_8);
    return Frame.buffer(type, path.length).put(path).array();
  }

  /** A terminal's size: rows and columns, 16 bits each. */
  private static ByteBuffer sizeFrame(byte type, JobStdio.TerminalSize size) {
    return Frame.buffer(type, 4).putShort((short) size.rows()).putShort((short) size.columns());
  }

  /** The 'a' frame: every argument NUL-terminated. */
  private static byte[] argvFrame(JobSpec spec) {
    byte[][] args = new byte[spec.argv().size()][];
    int length = 0;
    for (int i = 0; i < args.length; i++) {
      String arg = spec.argv().get(i);
      if (arg.indexOf('\0') >= 0) {
        throw new UchrootException("an argument of " + spec.argv().get(0) + " contains a NUL byte");
      }
      args[i] = arg.getBytes(StandardCharsets.UTF_8);
      length += args[i].length + 1;
    }
    ByteBuffer frame = Frame.buffer(Frame.ARGV, length);
    for (byte[] arg : args) {
      frame.put(arg).put((byte) 0);
    }
    return frame.array();
  }

  private static final class LinuxJob implements RunningJob {
    private final JobId id;
    private final SocketChannel channel;

    /** The command, until all of it is sent. */
    private final ByteBuffer argv;

    private final JobStdio stdio;
    private final Executor io;

    /** The command is sent and the channel blocking: from then on any thread may write. */
    private final CompletableFuture<Void> ready = new CompletableFuture<>();

    private final CompletableFuture<ExitStatus> finished = new CompletableFuture<>();

    /** Whole frames only: the stdin pump and signals take turns. */
    private final Object writeLock = new Object();

    private volatile boolean killed;

    private LinuxJob(
        JobId id, SocketChannel channel, ByteBuffer argv, JobStdio stdio, Executor io) {
      this.id = id;
      this.channel = channel;
      this.argv = argv;
      this.stdio = stdio;
      this.io = io;
    }

    /**
     * Connects and sends as much of the command as the socket takes at once, which is all of it
     * unless the server's backlog or the socket's buffer is full; {@link #run} does the rest.
     */
    static LinuxJob connect(JobId id, Path socket, JobSpec spec, Executor io) {
      ByteBuffer argv = ByteBuffer.wrap(request(spec));
      SocketChannel channel = null;
      try {
        channel = SocketChannel.open(StandardProtocolFamily.UNIX);
        channel.configureBlocking(false);
        if (channel.connect(UnixDomainSocketAddress.of(socket))) {
          channel.write(argv);
        }
        LinuxJob job = new LinuxJob(id, channel, argv, spec.stdio(), io);
        if (channel.isConnected() && !argv.hasRemaining()) {
          channel.configureBlocking(true);
          job.ready.complete(null);
        }
        return job;
      } catch (IOException e) {
        if (channel != null) {
          try {
            channel.close();
          } catch (IOException ignored) {
            // Never connected.
          }
        }
        throw new UchrootException(
            "cannot reach the session's job server at "
                + socket
                + ": "
                + UchrootException.reason(e),
            e);
      }
    }

    /** The io thread of the job: finishes sending the command, then relays its output. */
    void run() {
      MDC.put("job", id.toString());
      try {
        sendAndRelay();
      } finally {
        MDC.remove("job");
      }
    }

    private void sendAndRelay() {
      if (!ready.isDone()) {
        try {
          channel.configureBlocking(true);
          channel.finishConnect();
          send(argv);
          ready.complete(null);
        } catch (IOException e) {
          ready.completeExceptionally(e);
          close();
          finished.completeExceptionally(
              new UchrootException(
                  "cannot reach the session's job server: " + UchrootException.reason(e), e));
          return;
        }
      }
      relayOutput();
    }

    @Override
    public CompletionStage<ExitStatus> finished() {
      return finished;
    }

    /**
     * KILL ends our side of the stream instead of sending a 'k' frame: the server takes that as a
     * kill too, and nothing can hold it up, not even stdin the command has not read, in front of
     * which a frame would wait. Other signals are frames, written on the io executor since a write
     * may wait for the same reason.
     */
    @Override
    public void signal(Signal signal) {
      if (signal == Signal.KILL) {
        killed = true;
        ready.thenRun(this::shutdownOutput);
        return;
      }
      ByteBuffer frame = Frame.buffer(Frame.SIGNAL, 1).put((byte) signal.number()).flip();
      ready.thenRunAsync(
          () -> {
            try {
              send(frame);
            } catch (IOException e) {
              // The job has ended, or was killed: the signal has nobody left to reach.
            }
          },
          io);
    }

    /** The caller's terminal changed size: so does the command's, which gets SIGWINCH. */
    void resize(JobStdio.TerminalSize size) {
      ByteBuffer frame = sizeFrame(Frame.JOB_TERMINAL_SIZE, size).flip();
      io.execute(
          () -> {
            try {
              send(frame);
            } catch (IOException e) {
              // The job has ended: its terminal is gone with it.
            }
          });
    }

    private void shutdownOutput() {
      try {
        channel.shutdownOutput();
      } catch (IOException e) {
        // Closed: the job has ended already.
      }
    }

    private void send(ByteBuffer frame) throws IOException {
      synchronized (writeLock) {
        while (frame.hasRemaining()) {
          channel.write(frame);
        }
      }
    }

    /** Copies the caller's stdin into 'i' frames, then 'c'; ends with stdin or the job. */
    private void pumpStdin() {
      if (stdio.stdinFile().isPresent()) {
        return; // the command reads the file itself
      }
      ByteBuffer frame = ByteBuffer.allocate(Frame.HEADER_LENGTH + STDIN_CHUNK);
      byte[] data = frame.array();
      try (InputStream in = stdio.stdin()) {
        int n;
        while ((n = readStdin(in, data)) >= 0) {
          if (n > 0) {
            send(
                frame
                    .clear()
                    .put(Frame.STDIN)
                    .putInt(n)
                    .position(0)
                    .limit(Frame.HEADER_LENGTH + n));
          }
        }
        send(Frame.buffer(Frame.STDIN_END, 0).flip());
      } catch (IOException e) {
        // The job has ended, so its stdin has no reader left.
      }
    }

    /** Reads past the frame header; an unreadable stdin reads as its end. */
    private static int readStdin(InputStream in, byte[] data) {
      try {
        return in.read(data, Frame.HEADER_LENGTH, STDIN_CHUNK);
      } catch (IOException e) {
        return -1;
      }
    }

    /** Delivers output frames until the exit status; completes {@link #finished}. */
    private void relayOutput() {
      ByteBuffer head = ByteBuffer.allocate(Frame.HEADER_LENGTH);
      boolean[] sinkOpen = {true, true};
      String failure = null;
      try {
        while (true) {
          if (!readFully(head.clear())) {
            break;
          }
          byte type = head.get(0);
          int length = Frame.length(head);
          if (length < 0 || length > MAX_FRAME || (type == Frame.EXIT && length != 1)) {
            throw new IOException("bad frame from the job server");
          }
          ByteBuffer payload = ByteBuffer.allocate(length);
          if (!readFully(payload)) {
            break;
          }
          switch (type) {
            case Frame.STDOUT -> deliver(stdio.stdout(), payload.array(), sinkOpen, 0);
            case Frame.STDERR -> deliver(stdio.stderr(), payload.array(), sinkOpen, 1);
            case Frame.FAILURE -> {
              // The server's own failure: said where the command's errors go, as before.
              failure = new String(payload.array(), StandardCharsets.UTF_8);
              LOG.warn("job {}: {}", id, failure);
              byte[] line = ("uchroot-jobd: " + failure + "\n").getBytes(StandardCharsets.UTF_8);
              deliver(stdio.stderr(), line, sinkOpen, 1);
            }
            case Frame.EXIT -> {
              finished.complete(ExitStatus.fromShellStatus(payload.get(0) & 0xff));
              return;
            }
            default -> throw new IOException("unknown frame type from the job server");
          }
        }
      } catch (IOException e) {
        // A stream cut in the middle of a frame, after a kill or when the server went away.
        LOG.debug("job {}: {}", id, e.getMessage());
      } finally {
        close();
        if (!finished.isDone()) {
          ended(failure);
        }
      }
    }

    /** The stream ended without an exit status. */
    private void ended(String failure) {
      if (killed) {
        // Only a kill cuts the stream short, and it ended once the job had gone.
        finished.complete(new ExitStatus.Signalled(9));
      } else if (failure != null) {
        finished.complete(new ExitStatus.Exited(125));
      } else {
        finished.completeExceptionally(
            new UchrootException("the session's job server went away while the job ran"));
      }
    }

    private boolean readFully(ByteBuffer buffer) throws IOException {
      while (buffer.hasRemaining()) {
        if (channel.read(buffer) < 0) {
          return false;
        }
      }
      return true;
    }

    /** Keeps draining when the reader of the output went away, so that writers never block. */
    private static void deliver(OutputStream sink, byte[] data, boolean[] open, int which) {
      if (!open[which]) {
        return;
      }
      try {
        sink.write(data);
        sink.flush();
      } catch (IOException e) {
        open[which] = false;
      }
    }

    private void close() {
      try {
        channel.close();
      } catch (IOException e) {
        // Nothing more to say to the server.
      }
    }
  }
}
