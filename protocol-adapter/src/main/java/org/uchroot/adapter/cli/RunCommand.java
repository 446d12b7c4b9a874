package org.uchroot.adapter.cli;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.SessionSpec;
import org.uchroot.engine.Engine;
import org.uchroot.engine.Session;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code uchroot run -- CMD...}: a testbed for one command, on the terminal's streams. Exits with
 * the command's status; ^C interrupts the command, and the testbed is removed either way.
 */
@Command(
    name = "run",
    description = "Run one command in a fresh testbed, then remove the testbed.",
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
        throw new CliException(ExitCode.TESTBED_FAILED, Main.message(e));
      }
      ExitStatus status;
      try {
        status = await(session.run(command, terminal()));
      } catch (RuntimeException e) {
        throw new CliException(ExitCode.TESTBED_FAILED, Main.message(e));
      } finally {
        await(session.close());
      }
      return status.shellStatus();
    } finally {
      engine.close();
    }
  }

  private static JobStdio terminal() {
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
