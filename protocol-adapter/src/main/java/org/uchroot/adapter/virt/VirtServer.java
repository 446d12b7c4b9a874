package org.uchroot.adapter.virt;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.actors.SessionSpec;
import org.uchroot.adapter.exec.ExecRelay;
import org.uchroot.adapter.protocol.ProtocolError;
import org.uchroot.adapter.protocol.Request;
import org.uchroot.adapter.protocol.Response;
import org.uchroot.adapter.protocol.Verb;
import org.uchroot.adapter.terminal.HostTerminal;
import org.uchroot.engine.Engine;
import org.uchroot.engine.Session;
import org.uchroot.engine.SessionRegistry;
import org.uchroot.engine.SessionStatus;
import org.uchroot.engine.UchrootException;

/**
 * The autopkgtest virtualisation server: reads commands from the caller, one per line, and answers
 * each with one line, as {@code autopkgtest-virt-unshare} does (see {@code docs/protocol.md}).
 *
 * <p>Threading: {@link #serve} runs the whole conversation on the calling thread, one command at a
 * time. {@link #terminate} and {@link #interruptCommands} are for signal handlers and may be called
 * from any thread at any time.
 */
public final class VirtServer implements SignalTarget {

  /** After {@code quit}. */
  public static final int EXIT_QUIT = 0;

  /** After a request the server cannot serve, and at end of file: the reference's "bomb". */
  public static final int EXIT_FAILURE = 12;

  /** After an error the reference does not expect, such as a host file that cannot be read. */
  public static final int EXIT_UNEXPECTED = 16;

  /** When the caller stopped reading the answers, as a death by SIGPIPE reads in a shell. */
  public static final int EXIT_CALLER_GONE = 128 + 13;

  /** The prefix the reference's failure messages carry. */
  public static final String PROGNAME = "<VirtSubproc>";

  private static final Logger LOG = LoggerFactory.getLogger(VirtServer.class);
  private static final Duration STATUS_TIMEOUT = Duration.ofSeconds(5);

  /** The reference's shell: bash in DIR ($1) with the variables that follow exported. */
  private static final String SHELL_SCRIPT =
      "cd \"$1\"; shift; for variable; do export \"$variable\"; done; exec bash -i";

  /** The interrupt a signal last asked for; a status waits until the session has taken it. */
  private volatile CompletableFuture<Integer> pendingInterrupt =
      CompletableFuture.completedFuture(0);

  /**
   * What the server is started with.
   *
   * @param spec what {@code open} provisions; may throw {@link org.uchroot.engine.UchrootException}
   *     when there is nothing to open, such as no tarball
   * @param normalUser the account advertised as {@code suggested-normal-user}
   * @param runtimeDir where the exec sockets go, one per session
   * @param execProgram the program and leading arguments {@code print-execute-command} gives, the
   *     socket following them
   * @param copyTimeout how long one copy may take
   * @param workingDirectory the caller's, which relative host paths of copies start from (a
   *     frontend's, in the shared engine)
   * @param aptProxy the caching proxy the testbed's apt goes through, if any
   */
  public record Settings(
      Supplier<SessionSpec> spec,
      String normalUser,
      Path runtimeDir,
      List<String> execProgram,
      Duration copyTimeout,
      Path workingDirectory,
      Optional<AptProxy> aptProxy) {

    /** Settings with no apt proxy. */
    public Settings(
        Supplier<SessionSpec> spec,
        String normalUser,
        Path runtimeDir,
        List<String> execProgram,
        Duration copyTimeout,
        Path workingDirectory) {
      this(
          spec,
          normalUser,
          runtimeDir,
          execProgram,
          copyTimeout,
          workingDirectory,
          Optional.empty());
    }

    public Settings {
      Objects.requireNonNull(aptProxy, "aptProxy");
      Objects.requireNonNull(spec, "spec");
      Objects.requireNonNull(normalUser, "normalUser");
      Objects.requireNonNull(runtimeDir, "runtimeDir");
      execProgram = List.copyOf(execProgram);
      Objects.requireNonNull(copyTimeout, "copyTimeout");
      if (!workingDirectory.isAbsolute()) {
        throw new IllegalArgumentException("not absolute: " + workingDirectory);
      }
    }
  }

  private final Settings settings;
  private final CompletableFuture<Engine> engine;
  private final LineReader input;
  private final OutputStream answers;
  private final PrintStream messages;
  private final TestbedCopies copies;

  /** Set by {@link #terminate}: the conversation is over and the signal handler owns the exit. */
  private volatile boolean terminating;

  /**
   * The open testbed, or null: set and cleared on the serving thread, read by the signal handlers
   * too.
   */
  private volatile OpenTestbed testbed;

  /** The exec relay of the testbed just closed, until the close is answered. */
  private ExecRelay endedRelay;

  private boolean engineShutDown;

  /** False in a shared engine, which outlives this server: only the server's testbed is closed. */
  private final boolean ownsEngine;

  private final TerminalSource terminal;

  /**
   * @param engine the engine, perhaps still starting; the server closes it when it ends
   * @param in the caller's commands
   * @param answers where the answers go, and nothing else
   * @param messages where failure messages go (stderr)
   */
  public VirtServer(
      Settings settings,
      CompletableFuture<Engine> engine,
      InputStream in,
      OutputStream answers,
      PrintStream messages) {
    this(settings, engine, in, answers, messages, HostTerminal::ofControllingTerminal, true);
  }

  /** Where {@code shell} gets the caller's terminal from. */
  @FunctionalInterface
  public interface TerminalSource {
    /**
     * @throws IOException where the caller has none, with the reason
     */
    HostTerminal lend() throws IOException;
  }

  /**
   * A server for one caller of an engine that serves others too: at its end, and on {@link
   * #terminate}, it closes its own testbed and leaves the engine running.
   */
  public static VirtServer inSharedEngine(
      Settings settings,
      Engine engine,
      InputStream in,
      OutputStream answers,
      PrintStream messages,
      TerminalSource terminal) {
    return new VirtServer(
        settings,
        CompletableFuture.completedFuture(engine),
        in,
        answers,
        messages,
        terminal,
        false);
  }

  private VirtServer(
      Settings settings,
      CompletableFuture<Engine> engine,
      InputStream in,
      OutputStream answers,
      PrintStream messages,
      TerminalSource terminal,
      boolean ownsEngine) {
    this.ownsEngine = ownsEngine;
    this.terminal = terminal;
    this.settings = settings;
    this.engine = engine;
    this.input = new LineReader(in);
    this.answers = answers;
    this.messages = messages;
    this.copies = new TestbedCopies(settings.copyTimeout(), settings.workingDirectory(), engine);
  }

  /**
   * Serves the caller until {@code quit}, a failure or end of file, then closes the testbed and the
   * engine. Returns the status to exit with.
   */
  public int serve() {
    int status = conversation();
    if (!ownsEngine) {
      // An open that a terminate overtook, or a conversation that ended without its cleanup.
      closeLeftover();
      return status;
    }
    shutDownEngine();
    if (terminating) {
      // A signal handler is closing everything and will end the process by that signal.
      while (true) {
        LockSupport.park(this);
      }
    }
    return status;
  }

  private int conversation() {
    try {
      answer(Response.ok());
      while (true) {
        String line;
        try {
          line = input.readLine();
        } catch (IOException e) {
          line = null;
        }
        if (line == null) {
          return bomb(ProtocolError.endOfFile().getMessage());
        }
        try {
          var request = Request.parse(line);
          if (request.isEmpty()) {
            continue;
          }
          // shell's arguments may be a caller's environment, which stays out of the logs.
          LOG.debug(
              "executing {}",
              request.get().verb() == Verb.SHELL ? request.get().word() : line.strip());
          if (request.get().verb() == Verb.QUIT) {
            cleanUp();
            return EXIT_QUIT;
          }
          answer(handle(request.get()));
          closeEndedRelay();
        } catch (ProtocolError e) {
          return bomb(e.getMessage());
        } catch (CopyFailure e) {
          return unexpected(e.getMessage());
        } catch (RuntimeException e) {
          LOG.debug("unexpected error", e);
          return unexpected(OneLineMessage.of(e));
        }
      }
    } catch (CallerGone e) {
      LOG.error("cannot answer the caller: {}", e.getMessage());
      cleanUp();
      return EXIT_CALLER_GONE;
    }
  }

  /**
   * Closes the testbed and the engine, for SIGTERM and SIGHUP; the caller then dies by the signal.
   * The conversation stops where it is and says nothing more. Blocks until the testbed is removed.
   */
  @Override
  public void terminate() {
    terminating = true;
    OpenTestbed closing = testbed;
    if (closing != null) {
      closing.relay().stopAccepting();
    }
    if (!ownsEngine) {
      closeLeftover();
      return;
    }
    shutDownEngine();
    if (closing != null) {
      closing.relay().close(Duration.ZERO);
    }
  }

  /**
   * Interrupts the commands running in the testbed, which stays open: for SIGINT. Returns what it
   * did, for the signal's line on stderr.
   */
  @Override
  public String interruptCommands() {
    OpenTestbed open = testbed;
    if (open == null) {
      return "no testbed is open, nothing to interrupt";
    }
    Session current = open.session();
    // Straight to the server's one session, remembered until it answered: a status asked after
    // this signal must already see the testbed interrupted.
    CompletableFuture<Integer> hit = current.interrupt().toCompletableFuture();
    pendingInterrupt = hit;
    return "interrupted "
        + SignalTarget.count(hit)
        + " running command(s) in testbed "
        + current.id()
        + "; it stays open";
  }

  /** Kills the commands running in the testbed at once, which stays open: for a second SIGINT. */
  @Override
  public String killCommands() {
    OpenTestbed open = testbed;
    if (open == null) {
      return "no testbed is open, nothing to kill";
    }
    Session current = open.session();
    return "killed "
        + SignalTarget.count(current.kill().toCompletableFuture())
        + " running command(s) in testbed "
        + current.id()
        + "; it stays open";
  }

  /** How many commands a signal reached, as the session answers in time. */
  private Response handle(Request request) throws ProtocolError, CopyFailure {
    return switch (request.verb()) {
      case CAPABILITIES -> Response.ok(capabilities());
      case OPEN -> open();
      case CLOSE -> {
        closeTestbed(requireOpen(Verb.CLOSE));
        yield Response.ok();
      }
      case REVERT -> revert();
      case REBOOT -> {
        requireOpen(Verb.REBOOT);
        throw ProtocolError.notAdvertised(Verb.REBOOT);
      }
      case PRINT_EXECUTE_COMMAND -> {
        OpenTestbed open = requireOpen(Verb.PRINT_EXECUTE_COMMAND);
        List<String> program = new ArrayList<>(settings.execProgram());
        program.add(open.relay().socket().toString());
        yield Response.ok(Response.commaList(program));
      }
      case COPYDOWN -> copy(request, false);
      case COPYUP -> copy(request, true);
      case SHELL -> {
        shell(requireOpen(Verb.SHELL).session(), request.args());
        yield Response.ok();
      }
      case AUXVERB_DEBUG_FAIL -> Response.ok();
      case QUIT ->
          throw new IllegalStateException("quit ends the conversation, which has no answer");
      case STATUS -> status();
      case INTERRUPT ->
          Response.ok("jobs=" + await(requireOpen(Verb.INTERRUPT).session().interrupt()));
    };
  }

  private List<String> capabilities() {
    List<String> caps = new ArrayList<>();
    caps.add("revert");
    caps.add("revert-full-system");
    caps.add("root-on-testbed");
    caps.add(Response.keyValue("suggested-normal-user", settings.normalUser()));
    caps.add("uchroot-status");
    caps.add("uchroot-interrupt");
    OpenTestbed open = testbed;
    if (open != null) {
      caps.add(Response.keyValue("downtmp-host", open.session().scratchOnHost().toString()));
    }
    return caps;
  }

  /** The open testbed, which {@code verb} needs. */
  private OpenTestbed requireOpen(Verb verb) throws ProtocolError {
    OpenTestbed open = testbed;
    if (open == null) {
      throw ProtocolError.notOpen(verb);
    }
    return open;
  }

  private Response open() throws ProtocolError {
    if (testbed != null) {
      throw ProtocolError.alreadyOpen();
    }
    SessionSpec spec;
    try {
      spec = settings.spec().get();
    } catch (RuntimeException e) {
      throw ProtocolError.of(OneLineMessage.of(e));
    }
    Session opened = await(await(engine).open(spec));
    MDC.put("session", opened.id().value());
    Path socket = SessionRegistry.socketOf(settings.runtimeDir(), opened.id(), "exec");
    ExecRelay relay;
    try {
      relay = ExecRelay.start(socket, opened);
    } catch (IOException e) {
      // A testbed nobody can run commands in: closed before the failure is answered.
      MDC.remove("session");
      try {
        opened.closeAndWait();
      } catch (UchrootException closing) {
        LOG.error("{}", OneLineMessage.of(closing));
      }
      throw ProtocolError.of(
          "cannot make the exec socket " + socket + ": " + UchrootException.reason(e));
    }
    testbed = new OpenTestbed(opened, relay, opened.scratch());
    configureApt(opened);
    if (terminating) {
      // A SIGTERM came while the testbed opened, and found no socket to remove yet.
      relay.stopAccepting();
    }
    LOG.debug(
        "testbed {} open: rootfs {}, scratch {}", opened.id(), opened.rootfs(), opened.scratch());
    return Response.ok(Response.quoted(opened.scratch()));
  }

  private Response revert() throws ProtocolError {
    OpenTestbed open = requireOpen(Verb.REVERT);
    try {
      await(open.session().revert());
    } catch (ProtocolError e) {
      // The session has ended: nothing is left to close.
      forgetTestbed();
      open.relay().close(Duration.ZERO);
      throw e;
    }
    configureApt(open.session());
    String scratch = open.session().scratch();
    if (!scratch.equals(open.scratch())) {
      throw ProtocolError.of(
          "virt-runner failed to restore downtmp path "
              + open.scratch()
              + ", gave "
              + scratch
              + " instead");
    }
    return Response.ok(Response.quoted(scratch));
  }

  /** Points a fresh testbed's apt at the proxy, if there is one; a failure closes it. */
  private void configureApt(Session session) throws ProtocolError {
    if (settings.aptProxy().isEmpty()) {
      return;
    }
    try {
      await(settings.aptProxy().get().configure(session));
    } catch (ProtocolError e) {
      OpenTestbed open = testbed;
      forgetTestbed();
      if (open != null) {
        open.relay().close(Duration.ZERO);
      }
      try {
        session.closeAndWait();
      } catch (UchrootException closing) {
        LOG.error("{}", OneLineMessage.of(closing));
      }
      throw e;
    }
  }

  private Response status() throws ProtocolError {
    OpenTestbed open = testbed;
    if (open == null) {
      return Response.ok("state=closed", "jobs=0", "interrupts=0");
    }
    Session current = open.session();
    try {
      pendingInterrupt.get(STATUS_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS);
    } catch (Exception e) {
      // The interrupt's own answer is late; the status is still the session's word.
    }
    SessionStatus status = await(current.status());
    return Response.ok(
        "state=" + status.state().name().toLowerCase(Locale.ROOT),
        "jobs=" + status.runningJobs(),
        "interrupts=" + status.interrupts());
  }

  private Response copy(Request request, boolean up) throws ProtocolError, CopyFailure {
    OpenTestbed open = testbed;
    if (open == null) {
      throw ProtocolError.copyNotOpen(request.word());
    }
    String source = request.arg(0);
    String destination = request.arg(1);
    if (source.isEmpty() || destination.isEmpty()) {
      throw ProtocolError.copyPathsEmpty(request.word());
    }
    boolean directory = source.endsWith("/");
    if (directory != destination.endsWith("/")) {
      throw ProtocolError.copyDirectoryness(request.word());
    }
    try {
      if (up) {
        copies.copyUp(open.session(), source, destination, directory);
      } else {
        copies.copyDown(open.session(), source, destination, directory);
      }
      return Response.ok();
    } catch (CopyFailure.TimedOut e) {
      LOG.error("{}", e.getMessage());
      return Response.failed("timeout");
    } catch (CopyFailure.InTestbed e) {
      throw ProtocolError.of(e.getMessage());
    }
  }

  /**
   * The reference's default shell: {@code bash -i} in DIR with the given variables, on the
   * controlling terminal, which the shell gets as a pseudo-terminal of the testbed's: with job
   * control, and the keys its own until it exits.
   */
  private void shell(Session session, List<String> args) {
    // The directory and variables as arguments, never as script text: a quote in them stays theirs.
    List<String> argv = new ArrayList<>(List.of("sh", "-c", SHELL_SCRIPT, "sh"));
    argv.addAll(args);
    String term = System.getenv("TERM");
    if (term != null) {
      // The host's terminal type, for a correct termcap, as the reference passes it.
      argv.add("TERM=" + term);
    }
    try (HostTerminal lent = terminal.lend()) {
      await(session.run(argv, lent));
    } catch (IOException | ProtocolError e) {
      LOG.error("Cannot run shell: {}", e.getMessage());
    }
  }

  /** Closes the testbed as {@code close} asks; a failure is the caller's failure. */
  private void closeTestbed(OpenTestbed closing) throws ProtocolError {
    // No new command from now on, and the exec socket is gone when the close is answered; the
    // connections of earlier commands go once it is answered.
    forgetTestbed();
    endedRelay = closing.relay();
    endedRelay.stopAccepting();
    try {
      closing.session().closeAndWait();
    } catch (UchrootException e) {
      throw ProtocolError.of(OneLineMessage.of(e));
    }
  }

  /**
   * Gives the connections of a closed testbed's commands their grace to send their last frames,
   * then drops them: after the close is answered, as the answer does not depend on it.
   */
  private void closeEndedRelay() {
    if (endedRelay != null) {
      endedRelay.close();
      endedRelay = null;
    }
  }

  /** In a shared engine: closes the testbed still open, from whichever thread gets here first. */
  private void closeLeftover() {
    OpenTestbed open;
    synchronized (this) {
      open = testbed;
      forgetTestbed();
    }
    if (open == null) {
      return;
    }
    open.relay().stopAccepting();
    try {
      open.session().closeAndWait();
    } catch (UchrootException e) {
      LOG.error("cannot close testbed {}: {}", open.session().id(), OneLineMessage.of(e));
    } finally {
      open.relay().close(Duration.ZERO);
    }
  }

  private void forgetTestbed() {
    testbed = null;
    MDC.remove("session");
  }

  /**
   * Closes the testbed, if open, before an exit; says why on stderr if it cannot, as the
   * reference's {@code error_cleanup} does.
   */
  private boolean cleanUp() {
    try {
      OpenTestbed open = testbed;
      if (open == null || terminating) {
        return true;
      }
      closeTestbed(open);
      return true;
    } catch (ProtocolError e) {
      say(PROGNAME + ": failure: " + e.getMessage());
      return false;
    } finally {
      closeEndedRelay();
    }
  }

  private int bomb(String message) {
    boolean cleaned = cleanUp();
    if (!terminating) {
      if (!cleaned) {
        say("while cleaning up because of another error:");
      }
      say(PROGNAME + ": failure: " + message);
    }
    return EXIT_FAILURE;
  }

  private int unexpected(String message) {
    boolean cleaned = cleanUp();
    if (!terminating) {
      if (!cleaned) {
        say("while cleaning up because of another error:");
      }
      say("Unexpected error: " + message);
    }
    return EXIT_UNEXPECTED;
  }

  private void say(String line) {
    messages.println(line);
    messages.flush();
  }

  private void answer(Response response) throws CallerGone {
    if (terminating) {
      return;
    }
    try {
      answers.write((response.line() + "\n").getBytes(StandardCharsets.UTF_8));
      answers.flush();
    } catch (IOException e) {
      throw new CallerGone(e);
    }
  }

  /** Once only: a second close of the engine would wait on a stopped actor system. */
  private synchronized void shutDownEngine() {
    if (engineShutDown) {
      return;
    }
    engineShutDown = true;
    Engine running;
    try {
      running = engine.join();
    } catch (CompletionException | CancellationException e) {
      return;
    }
    try {
      running.close();
    } catch (RuntimeException e) {
      if (!terminating) {
        say(PROGNAME + ": failure: " + OneLineMessage.of(e));
      }
    }
  }

  /** Waits for an engine answer; its failure is the request's failure, in one line. */
  private static <T> T await(CompletionStage<T> stage) throws ProtocolError {
    try {
      return stage.toCompletableFuture().join();
    } catch (CompletionException | CancellationException e) {
      throw ProtocolError.of(OneLineMessage.of(e.getCause() != null ? e.getCause() : e));
    }
  }

  /**
   * An open testbed: its session, the exec relay of its commands, and the scratch path that open
   * gave and revert must give again.
   */
  private record OpenTestbed(Session session, ExecRelay relay, String scratch) {}

  /** The caller closed its end of the answers. */
  private static final class CallerGone extends Exception {
    CallerGone(IOException cause) {
      super(cause.getMessage(), cause, false, false);
    }
  }
}
