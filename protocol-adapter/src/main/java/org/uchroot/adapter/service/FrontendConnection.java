package org.uchroot.adapter.service;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.io.PrintStream;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.uchroot.actors.GracePeriods;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.adapter.terminal.HostTerminal;
import org.uchroot.adapter.virt.InterruptEscalation;
import org.uchroot.adapter.virt.SignalTarget;
import org.uchroot.engine.ChannelStreams;
import org.uchroot.engine.Engine;
import org.uchroot.engine.Frame;
import org.uchroot.engine.FrameWriter;

/**
 * One connection to the shared engine: a frontend's virtualisation server, or a request of {@code
 * uchroot engine}. The frames are those of docs/protocol.md, "The engine socket".
 *
 * <p>Threading: {@link #serve} runs the conversation on the connection's own thread; a second
 * thread reads the frontend's frames, so that its signals are acted on while a request runs.
 */
final class FrontendConnection implements EngineClient {

  private static final Logger LOG = LoggerFactory.getLogger(FrontendConnection.class);

  /** No frame of the preamble or of stdin is bigger; an argv frame may be as big as execve's. */
  private static final int MAX_FRAME = 16 << 20;

  private static final int SIGHUP = 1;
  private static final int SIGINT = 2;
  private static final int SIGTERM = 15;
  private static final int SIGWINCH = 28;

  private final String id;
  private final EngineService service;
  private final SocketChannel channel;
  private final InputStream in;
  private final FrameWriter out;
  private final PrintStream messages;
  private final PipedInputStream requests = new PipedInputStream(64 << 10);
  private final PipedOutputStream requestsFeed;
  private Path workingDirectory = Path.of("/");
  private Map<String, String> environment = Map.of();
  private Path terminalDevice;
  private volatile HostTerminal lentTerminal;
  private volatile String standaloneReason;
  private volatile SignalTarget target;
  private volatile InterruptEscalation escalation;

  /** Set when a signal or the engine's stop ended the conversation: the status to exit with. */
  private volatile Integer endedBy;

  FrontendConnection(String id, EngineService service, SocketChannel channel) throws IOException {
    this.id = id;
    this.service = service;
    this.channel = channel;
    this.in = ChannelStreams.input(channel);
    this.out = new FrameWriter(channel);
    this.messages = new PrintStream(out.stream(Frame.STDERR), true, StandardCharsets.UTF_8);
    this.requestsFeed = new PipedOutputStream(requests);
  }

  String id() {
    return id;
  }

  /** Serves the connection to its end. */
  void serve() {
    MDC.put(FrontendLogs.FRONTEND, id);
    FrontendLogs.register(id, out.stream(Frame.STDERR));
    try {
      List<String> argv = preamble();
      if (argv == null) {
        return;
      }
      switch (argv.isEmpty() ? "" : argv.get(0)) {
        case "virt-server", "run" -> command(argv);
        case "status" -> {
          out.send(new Frame(Frame.STDOUT, service.status(this).getBytes(StandardCharsets.UTF_8)));
          out.finish(Frame.exit(0));
        }
        case "stop" -> {
          out.send(new Frame(Frame.STDERR, service.stopping().getBytes(StandardCharsets.UTF_8)));
          service.stop("asked by uchroot engine stop", this);
          out.finish(Frame.exit(0));
        }
        default ->
            out.finish(
                Frame.failure(
                    "uchroot engine: unknown request "
                        + argv
                        + "; a frontend of another version of uchroot? Stop the engine with"
                        + " `uchroot engine stop`"));
      }
    } catch (IOException e) {
      LOG.debug("frontend {}: {}", id, OneLineMessage.of(e));
    } finally {
      FrontendLogs.unregister(id);
      MDC.remove(FrontendLogs.FRONTEND);
      try {
        channel.close();
      } catch (IOException e) {
        // Gone already.
      }
    }
  }

  /** The frames before the command: the working directory, the environment, then the argv. */
  private List<String> preamble() throws IOException {
    while (true) {
      Frame frame = Frame.read(in, MAX_FRAME);
      if (frame == null) {
        return null;
      }
      switch (frame.type()) {
        case Frame.WORKING_DIRECTORY -> workingDirectory = Path.of(frame.text());
        case Frame.ENVIRONMENT -> environment = environmentOf(frame.arguments());
        case Frame.TERMINAL_DEVICE -> terminalDevice = Path.of(frame.text());
        case Frame.ARGV -> {
          return frame.arguments();
        }
        default -> {
          out.finish(
              Frame.failure(
                  "protocol error: frame '" + (char) frame.type() + "' before a command"));
          return null;
        }
      }
    }
  }

  private static Map<String, String> environmentOf(List<String> entries) {
    Map<String, String> env = new HashMap<>();
    for (String entry : entries) {
      int equals = entry.indexOf('=');
      if (equals > 0) {
        env.putIfAbsent(entry.substring(0, equals), entry.substring(equals + 1));
      }
    }
    return Map.copyOf(env);
  }

  /** A command line served for the frontend: {@code virt-server ARGS} or {@code run ARGS}. */
  private void command(List<String> argv) {
    Thread reader = new Thread(this::readFrames, "uchroot-frontend-" + id + "-input");
    reader.setDaemon(true);
    reader.start();
    int status = service.frontendCommand().run(this, argv);
    String standalone = standaloneReason;
    if (standalone != null) {
      out.finish(new Frame(Frame.STANDALONE, standalone.getBytes(StandardCharsets.UTF_8)));
    } else {
      Integer signalled = endedBy;
      out.finish(Frame.exit(signalled != null ? signalled : status));
    }
  }

  /** The frontend's frames during the conversation: its caller's requests and its signals. */
  private void readFrames() {
    MDC.put(FrontendLogs.FRONTEND, id);
    try {
      while (true) {
        Frame frame = Frame.read(in, MAX_FRAME);
        if (frame == null) {
          break;
        }
        switch (frame.type()) {
          case Frame.STDIN -> {
            requestsFeed.write(frame.payload());
            // Wakes the conversation now: a pipe's reader otherwise polls once a second.
            requestsFeed.flush();
          }
          case Frame.STDIN_END -> requestsFeed.close();
          case Frame.SIGNAL -> signalled(frame.payload().length == 1 ? frame.payload()[0] : 0);
          default -> LOG.warn("frontend {}: unexpected frame {} ignored", id, frame);
        }
      }
    } catch (IOException e) {
      LOG.debug("frontend {} gone: {}", id, OneLineMessage.of(e));
    } finally {
      // The frontend has gone (even killed): its caller's input ends, which closes the testbed.
      closeRequests();
    }
  }

  private void signalled(int signal) {
    switch (signal) {
      case SIGINT -> {
        InterruptEscalation current = escalation;
        if (current != null) {
          LOG.info("{}", current.interrupted());
        }
      }
      case SIGTERM, SIGHUP -> end(128 + signal, null);
      case SIGWINCH -> {
        HostTerminal terminal = lentTerminal;
        if (terminal != null) {
          terminal.resized();
        }
      }
      default -> LOG.debug("frontend {}: signal {} ignored", id, signal);
    }
  }

  /**
   * Ends the conversation with {@code status}, as SIGTERM ends a server of its own: the testbed is
   * closed first, then the frontend told, with {@code message} on its stderr if not null.
   */
  void end(int status, String message) {
    endedBy = status;
    if (message != null) {
      messages.println(message);
    }
    SignalTarget current = target;
    if (current != null) {
      current.terminate();
    }
    closeRequests();
  }

  private void closeRequests() {
    try {
      requestsFeed.close();
    } catch (IOException e) {
      // Closed already.
    }
  }

  @Override
  public Engine engine() {
    return service.engine();
  }

  @Override
  public Path workingDirectory() {
    return workingDirectory;
  }

  @Override
  public Map<String, String> environment() {
    return environment;
  }

  @Override
  public InputStream requests() {
    return requests;
  }

  @Override
  public OutputStream answers() {
    return out.checkedStream(Frame.STDOUT);
  }

  @Override
  public PrintStream messages() {
    return messages;
  }

  @Override
  public Optional<HostTerminal> lendTerminal() throws IOException {
    // The frontend's user is the engine's (SO_PEERCRED): it opens nothing that user could not.
    if (terminalDevice == null || !terminalDevice.startsWith("/dev/")) {
      return Optional.empty();
    }
    HostTerminal terminal = HostTerminal.ofDevice(terminalDevice);
    lentTerminal = terminal;
    return Optional.of(terminal);
  }

  @Override
  public void enableDebug() {
    FrontendLogs.enableDebug(id);
  }

  @Override
  public void serving(SignalTarget target, GracePeriods grace) {
    // An empty stdout frame: the frontend relays its stdin from now on.
    out.send(new Frame(Frame.STDOUT, new byte[0]));
    this.escalation =
        new InterruptEscalation(grace, target::interruptCommands, target::killCommands);
    this.target = target;
    if (endedBy != null) {
      target.terminate();
    }
  }

  @Override
  public void runStandalone(String reason) {
    standaloneReason = reason;
  }
}
