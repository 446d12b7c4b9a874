package org.uchroot.adapter.cli;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.function.Supplier;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.actors.SessionSpec;
import org.uchroot.adapter.service.EngineClient;
import org.uchroot.adapter.terminal.HostTerminal;
import org.uchroot.adapter.virt.SignalTarget;
import org.uchroot.engine.Engine;
import org.uchroot.engine.Session;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code uchroot run -- CMD...}: a testbed for one command, on a pseudo-terminal of its own where
 * uchroot runs on a terminal (the keys, Ctrl+C included, are then the command's), else on the
 * streams as they are (^C then interrupts the command). Exits with the command's status; the
 * testbed is removed either way.
 */
@Command(
    name = "run",
    description = {
      "Run one command in a fresh testbed, then remove the testbed.",
      "",
      "Where stdin and stdout are a terminal, the command runs on a pseudo-terminal of its own that"
          + " follows the terminal's size, as with podman run -it: every key, Ctrl+C and Ctrl+Z"
          + " included, is the command's, and a shell has job control. Elsewhere the command gets"
          + " the streams as they are, and Ctrl+C interrupts it (SIGINT, then SIGTERM and a kill"
          + " after the grace periods; Ctrl+C again kills it at once)."
    },
    exitCodeListHeading = "%nExit status:%n",
    exitCodeList = {
      "0-255:The command's own status (128+N if it died of signal N).",
      "2:The command line does not parse.",
      "125:A failure of uchroot's own: bad input, or no testbed could be made."
    },
    sortOptions = false,
    separator = " ")
final class RunCommand implements Callable<Integer> {

  @Mixin TestbedOptions options;

  // Read by the frontend too, which hands `uchroot run` to the shared engine or runs it itself.
  @Mixin EngineChoice engineChoice;

  @Option(
      names = {"-h", "--help"},
      usageHelp = true,
      description = "Show this help message and exit.")
  boolean help;

  @Parameters(arity = "1..*", paramLabel = "CMD", description = "The command and its arguments.")
  List<String> command;

  /** The frontend served, in the shared engine; null in a process of its own. */
  private final EngineClient frontend;

  RunCommand() {
    this(null);
  }

  RunCommand(EngineClient frontend) {
    this.frontend = frontend;
  }

  @Override
  public Integer call() {
    if (frontend != null) {
      return runForFrontend();
    }
    Logging.start(options.debug);
    TestbedOptions.Started started = options.startEngine(System.getenv());
    Engine engine = started.engine();
    try {
      Session session = open(engine, started.spec());
      // Taken once the testbed is open, so that what the open says reads as usual.
      return run(session, HostTerminal::ofStandardStreams, RunCommand::streams);
    } finally {
      engine.close();
    }
  }

  /**
   * The command of a frontend, in a session of the shared engine: the frontend's options,
   * environment and working directory; its terminal if its stdin and stdout are one, else its
   * streams; its signals for the command's.
   */
  private int runForFrontend() {
    Optional<TestbedOptions.InEngine> inEngine = options.inEngine(frontend, engineChoice);
    if (inEngine.isEmpty()) {
      return 0;
    }
    TestbedOptions.InEngine asked = inEngine.get();
    if (asked.choice().tarball().isEmpty()) {
      throw new CliException(ExitCode.INVALID_ARGUMENT, asked.choice().missingTarball());
    }
    Session session = open(frontend.engine(), asked.spec());
    frontend.serving(new SessionSignals(session), asked.asked().grace());
    return run(
        session,
        () -> {
          try {
            return frontend.lendTerminal();
          } catch (IOException e) {
            LoggerFactory.getLogger(RunCommand.class)
                .warn("the command gets no terminal: {}", e.getMessage());
            return Optional.empty();
          }
        },
        () -> JobStdio.of(frontend.requests(), frontend.answers(), frontend.messages()));
  }

  private static Session open(Engine engine, SessionSpec spec) {
    try {
      return await(engine.open(spec));
    } catch (RuntimeException e) {
      throw new CliException(ExitCode.TESTBED_FAILED, OneLineMessage.of(e));
    }
  }

  /** Runs the command on the terminal if there is one, else on the streams; closes the session. */
  private int run(
      Session session, Supplier<Optional<HostTerminal>> terminals, Supplier<JobStdio> streams) {
    Optional<HostTerminal> terminal = terminals.get();
    ExitStatus status;
    try {
      status = await(session.run(command, terminal.<JobStdio>map(raw -> raw).orElseGet(streams)));
    } catch (RuntimeException e) {
      throw new CliException(ExitCode.TESTBED_FAILED, OneLineMessage.of(e));
    } finally {
      terminal.ifPresent(HostTerminal::close);
      await(session.close());
    }
    return status.shellStatus();
  }

  /** A frontend's signals, for the one session of its command. */
  private record SessionSignals(Session session) implements SignalTarget {

    @Override
    public String interruptCommands() {
      return "interrupted "
          + SignalTarget.count(session.interrupt().toCompletableFuture())
          + " running command(s) in testbed "
          + session.id();
    }

    @Override
    public String killCommands() {
      return "killed "
          + SignalTarget.count(session.kill().toCompletableFuture())
          + " running command(s) in testbed "
          + session.id();
    }

    @Override
    public void terminate() {
      session.closeAndWait();
    }
  }

  /** The streams as they are, where they are no terminal. */
  private static JobStdio streams() {
    return JobStdio.of(
        new FileInputStream(FileDescriptor.in),
        new FileOutputStream(FileDescriptor.out),
        new FileOutputStream(FileDescriptor.err));
  }

  private static <T> T await(CompletionStage<T> stage) {
    try {
      return stage.toCompletableFuture().join();
    } catch (CompletionException e) {
      throw e.getCause() instanceof RuntimeException cause ? cause : e;
    }
  }
}
