package org.uchroot.adapter.cli;

import com.typesafe.config.ConfigException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStreamWriter;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;
import java.util.List;
import java.util.Properties;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.adapter.service.EngineClient;
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
    exitCodeListHeading = "%nExit status:%n",
    exitCodeList = {
      "0:Success; for run, the command's own status passes through.",
      "2:The command line does not parse (an unknown option, a missing argument).",
      "125:A failure of uchroot's own: bad input, or no testbed could be made."
    },
    footerHeading = "%nFiles:%n",
    footer = {
      "/etc/uchroot/uchroot.conf (or $UCHROOT_CONF_DIR/uchroot.conf), then"
          + " $XDG_CONFIG_HOME/uchroot/uchroot.conf (else ~/.config/uchroot/uchroot.conf): the"
          + " configuration (HOCON), each key described in the first; a later file wins, and"
          + " -Dkey=value in $UCHROOT_JAVA_OPTS wins over both.",
      "/var/cache/uchroot, else $XDG_CACHE_HOME/uchroot: the unpacked tarballs (uchroot-cache(1));"
          + " in class-data/, the class data archives of copied distributions (uchroot-doctor(1)).",
      "/var/lib/uchroot, else $XDG_STATE_HOME/uchroot: the live testbeds (uchroot-sessions(1))"
          + " and, for root, the picked id range (root-ids)."
    },
    subcommands = {
      VirtServerCommand.class,
      EngineCommand.class,
      RunCommand.class,
      BatchCommand.class,
      SessionsCommand.class,
      CacheCommand.class,
      DoctorCommand.class,
      CommandLine.HelpCommand.class
    })
public final class Main {

  /** The frontend's name, which its messages carry. */
  static final String FRONTEND_PROGRAM = "autopkgtest-virt-uchroot";

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
    return run(new PrintWriter(System.out, true), err, args);
  }

  /**
   * As {@link #run(String...)}, with help and lists going to {@code out}, messages to {@code err}.
   */
  public static int run(PrintWriter out, PrintWriter err, String... args) {
    String program = System.getProperty("uchroot.program");
    CommandLine commandLine;
    if (program != null && args.length > 0 && args[0].equals("virt-server")) {
      commandLine = new CommandLine(new VirtServerCommand()).setCommandName(program);
      args = Arrays.copyOfRange(args, 1, args.length);
    } else {
      commandLine = new CommandLine(new Main());
      // The command's own words may look like options: they are not ours.
      commandLine.getSubcommands().get("run").setStopAtPositional(true);
    }
    return execute(commandLine, out, err, args);
  }

  /**
   * Runs a frontend's command line in the shared engine, {@code virt-server ARGS} (as {@code
   * autopkgtest-virt-uchroot}) or {@code run ARGS}, with the same option rules, messages and
   * statuses as in a process of its own.
   */
  public static int runForFrontend(EngineClient frontend, List<String> argv) {
    PrintWriter out =
        new PrintWriter(new OutputStreamWriter(frontend.answers(), StandardCharsets.UTF_8), true);
    PrintWriter err = new PrintWriter(frontend.messages(), true);
    String[] args = argv.toArray(String[]::new);
    if (argv.get(0).equals("run")) {
      // uchroot's own command line, whose run command serves this frontend.
      CommandLine.IFactory factory =
          new CommandLine.IFactory() {
            @Override
            public <K> K create(Class<K> type) throws Exception {
              return type == RunCommand.class
                  ? type.cast(new RunCommand(frontend))
                  : CommandLine.defaultFactory().create(type);
            }
          };
      CommandLine commandLine = new CommandLine(new Main(), factory);
      commandLine.getSubcommands().get("run").setStopAtPositional(true);
      return execute(commandLine, out, err, args);
    }
    CommandLine commandLine =
        new CommandLine(new VirtServerCommand(frontend)).setCommandName(FRONTEND_PROGRAM);
    return execute(commandLine, out, err, Arrays.copyOfRange(args, 1, args.length));
  }

  private static int execute(
      CommandLine commandLine, PrintWriter out, PrintWriter err, String[] args) {
    commandLine
        .setOut(out)
        .setErr(err)
        .setExitCodeExceptionMapper(Main::exitCode)
        .setParameterExceptionHandler(Main::parseError)
        .setExecutionExceptionHandler(
            (e, cmd, parseResult) -> {
              report(cmd, OneLineMessage.of(e));
              return cmd.getExitCodeExceptionMapper().getExitCode(e);
            });
    // The drop-in server keeps the reference's statuses, under either name.
    CommandLine server =
        commandLine.getCommand() instanceof VirtServerCommand
            ? commandLine
            : commandLine.getSubcommands().get("virt-server");
    server.setExitCodeExceptionMapper(Main::referenceExitCode);
    try {
      args = argparseStyle(commandLine, args);
    } catch (CommandLine.ParameterException e) {
      return parseError(e, args);
    }
    return commandLine.execute(args);
  }

  /**
   * The arguments of the commands that take the reference's options, in the form picocli reads: see
   * {@link ArgparseArgs}.
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

  /**
   * The statuses of {@code uchroot}'s own commands: 2 for a command line that does not parse, 125
   * for any failure of uchroot's own (bad input, no testbed); a command's own status passes through
   * as the command's return value.
   */
  private static int exitCode(Throwable e) {
    if (e instanceof CommandLine.ParameterException
        || e instanceof CliException cli && cli.exitCode() == ExitCode.USAGE) {
      return ExitCode.USAGE.code();
    }
    return ExitCode.TESTBED_FAILED.code();
  }

  /** The statuses autopkgtest-virt-unshare exits with: 1 for a bad option value, 2 for usage. */
  private static int referenceExitCode(Throwable e) {
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

  /** A command line that does not parse: argparse's text for the drop-in server. */
  private static int parseError(CommandLine.ParameterException e, String[] args) {
    return e.getCommandLine().getCommand() instanceof VirtServerCommand
        ? argparseUsageError(e, args)
        : usageError(e, args);
  }

  /** The error, then where to read about the command's options. */
  private static int usageError(CommandLine.ParameterException e, String[] args) {
    CommandLine cmd = e.getCommandLine();
    PrintWriter err = cmd.getErr();
    String name = cmd.getCommandSpec().qualifiedName();
    err.println(name + ": " + e.getMessage());
    err.println("Try '" + name + " --help' for more information.");
    err.flush();
    return cmd.getExitCodeExceptionMapper().getExitCode(e);
  }

  /** As argparse: the synopsis, then {@code PROGRAM: error: MESSAGE}. */
  private static int argparseUsageError(CommandLine.ParameterException e, String[] args) {
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

  /** The engine's configuration; a broken one ends the command line with its reason. */
  static EngineConfig loadConfig() {
    EngineConfig config;
    try {
      config = EngineConfig.load();
    } catch (ConfigException | IllegalStateException e) {
      throw new CliException(ExitCode.INVALID_ARGUMENT, OneLineMessage.of(e));
    }
    // Checked by every command, so that a server of its own reports a value the engine refused.
    EngineChoice.defaultMode(config.config());
    return config;
  }

  /** The version the build wrote into {@code version.properties}. */
  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() throws IOException {
      Properties properties = new Properties();
      try (InputStream in = Main.class.getResourceAsStream("version.properties")) {
        if (in != null) {
          properties.load(in);
        }
      }
      return new String[] {"uchroot " + properties.getProperty("version", "(development)")};
    }
  }
}
