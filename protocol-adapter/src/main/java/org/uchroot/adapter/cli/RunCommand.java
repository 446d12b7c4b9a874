package org.uchroot.adapter.cli;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.actors.SessionSpec;
import org.uchroot.adapter.terminal.HostTerminal;
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

  @Option(
      names = {"-h", "--help"},
      usageHelp = true,
      description = "Show this help message and exit.")
  boolean help;

  @Parameters(arity = "1..*", paramLabel = "CMD", description = "The command and its arguments.")
  List<String> command;

  @Override
  public Integer call() {
    Logging.start(options.debug);
    TestbedOptions.Started started = options.startEngine(System.getenv());
    Engine engine = started.engine();
    SessionSpec spec = started.spec();
    try {
      Session session;
      try {
        session = await(engine.open(spec));
      } catch (RuntimeException e) {
        throw new CliException(ExitCode.TESTBED_FAILED, OneLineMessage.of(e));
      }
      // Taken once the testbed is open, so that what the open says reads as usual.
      Optional<HostTerminal> terminal = HostTerminal.ofStandardStreams();
      ExitStatus status;
      try {
        status =
            await(
                session.run(
                    command, terminal.<JobStdio>map(raw -> raw).orElseGet(RunCommand::streams)));
      } catch (RuntimeException e) {
        throw new CliException(ExitCode.TESTBED_FAILED, OneLineMessage.of(e));
      } finally {
        terminal.ifPresent(HostTerminal::close);
        await(session.close());
      }
      return status.shellStatus();
    } finally {
      engine.close();
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
