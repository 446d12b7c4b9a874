package org.uchroot.adapter.cli;

import com.typesafe.config.ConfigException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.concurrent.CompletionException;
import org.uchroot.engine.EngineConfig;
import org.uchroot.engine.UchrootException;
import picocli.CommandLine;
import picocli.CommandLine.Command;

/**
 * Entry point of {@code uchroot} and of {@code autopkgtest-virt-uchroot} (which runs {@code uchroot
 * virt-server} under its own name, given by the launch script in {@code -Duchroot.program}).
 *
 * <p>No logger is made here or in the commands' fields: {@code --debug} must be seen before logback
 * starts.
 */
@Command(
    name = "uchroot",
    mixinStandardHelpOptions = true,
    versionProvider = Main.Version.class,
    description = "Disposable testbeds from rootfs tarballs, without root.",
    subcommands = {
      VirtServerCommand.class,
      RunCommand.class,
      BatchCommand.class,
      SessionsCommand.class,
      CacheCommand.class,
      ExecCommand.class
    })
public final class Main {

  private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss");

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs a command line and returns its exit status. */
  public static int run(String... args) {
    return run(new PrintWriter(System.err, true), args);
  }

  /** As {@link #run(String...)}, with the command line's own messages going to {@code err}. */
  public static int run(PrintWriter err, String... args) {
    String program = System.getProperty("uchroot.program");
    CommandLine commandLine;
    if (program != null && args.length > 0 && args[0].equals("virt-server")) {
      commandLine = new CommandLine(new VirtServerCommand()).setCommandName(program);
      args = Arrays.copyOfRange(args, 1, args.length);
    } else {
      commandLine = new CommandLine(new Main());
      // The command's own words may look like options: they are not ours.
      commandLine.getSubcommands().get("run").setStopAtPositional(true);
      CommandLine exec = commandLine.getSubcommands().get("exec");
      exec.setStopAtPositional(true);
      exec.setUnmatchedOptionsArePositionalParams(true);
    }
    commandLine
        .setErr(err)
        .setExitCodeExceptionMapper(Main::exitCode)
        .setParameterExceptionHandler(Main::usageError)
        .setExecutionExceptionHandler(
            (e, cmd, parseResult) -> {
              report(cmd, message(e));
              return cmd.getExitCodeExceptionMapper().getExitCode(e);
            });
    try {
      args = argparseStyle(commandLine, args);
    } catch (CommandLine.ParameterException e) {
      return usageError(e, args);
    }
    return commandLine.execute(args);
  }

  /**
   * The arguments of the commands that take the reference's options, in the form picocli reads:
   * see {@link ArgparseArgs}.
   */
  private static String[] argparseStyle(CommandLine commandLine, String[] args) {
    if (commandLine.getCommand() instanceof VirtServerCommand) {
      return ArgparseArgs.normalise(commandLine, args);
    }
    CommandLine subcommand = args.length > 0 ? commandLine.getSubcommands().get(args[0]) : null;
    if (subcommand == null || !subcommand.getCommandSpec().mixins().containsKey("options")) {
      return args;
    }
    String[] rest = ArgparseArgs.normalise(subcommand, Arrays.copyOfRange(args, 1, args.length));
    String[] all = new String[rest.length + 1];
    all[0] = args[0];
    System.arraycopy(rest, 0, all, 1, rest.length);
    return all;
  }

  private static int exitCode(Throwable e) {
    if (e instanceof CliException cli) {
      return cli.exitCode().code();
    }
    if (e instanceof CommandLine.ParameterException) {
      return ExitCode.USAGE.code();
    }
    return e instanceof UchrootException
        ? ExitCode.TESTBED_FAILED.code()
        : ExitCode.INVALID_ARGUMENT.code();
  }

  /** As argparse: the synopsis, then {@code PROGRAM: error: MESSAGE}. */
  private static int usageError(CommandLine.ParameterException e, String[] args) {
    CommandLine cmd = e.getCommandLine();
    PrintWriter err = cmd.getErr();
    err.print(cmd.getHelp().synopsisHeading() + cmd.getHelp().synopsis(0));
    err.println(cmd.getCommandSpec().qualifiedName() + ": error: " + e.getMessage());
    err.flush();
    return cmd.getExitCodeExceptionMapper().getExitCode(e);
  }

  /** One line on stderr, in the form of the reference's error log lines. */
  private static void report(CommandLine cmd, String message) {
    PrintWriter err = cmd.getErr();
    err.println(
        cmd.getCommandSpec().root().name()
            + " ["
            + LocalTime.now().format(CLOCK)
            + "]: ERROR: "
            + message);
    err.flush();
  }

  /** An exception's message on one line, without the names of the exception classes. */
  static String message(Throwable e) {
    Throwable cause = e;
    while (cause instanceof CompletionException && cause.getCause() != null) {
      cause = cause.getCause();
    }
    String message = cause.getMessage() != null ? cause.getMessage() : cause.toString();
    return message.strip().replaceAll("\\s*\\n\\s*", "; ");
  }

  /** The engine's configuration; a broken one ends the command line with its reason. */
  static EngineConfig loadConfig() {
    try {
      return EngineConfig.load();
    } catch (ConfigException | IllegalStateException e) {
      throw new CliException(ExitCode.INVALID_ARGUMENT, message(e));
    }
  }

  /** The distribution's top directory: set by the launch scripts, else above libexec/. */
  static Path home(EngineConfig config) {
    String home = System.getProperty("uchroot.home");
    return home != null ? Path.of(home) : config.libexecDir().toAbsolutePath().getParent();
  }

  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      String version = Main.class.getPackage().getImplementationVersion();
      return new String[] {"uchroot " + (version != null ? version : "(development)")};
    }
  }
}
