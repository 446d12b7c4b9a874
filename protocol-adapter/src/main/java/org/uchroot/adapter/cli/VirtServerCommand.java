package org.uchroot.adapter.cli;

import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import org.slf4j.LoggerFactory;
import org.uchroot.adapter.service.EngineClient;
import org.uchroot.adapter.virt.VirtServer;
import org.uchroot.engine.Engine;
import org.uchroot.engine.EngineConfig;
import org.uchroot.engine.SessionRegistry;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code autopkgtest-virt-uchroot}, alias {@code uchroot virt-server}: the protocol on stdio. */
@Command(
    name = "virt-server",
    description = "Serve the autopkgtest virtualisation protocol on stdin and stdout.",
    exitCodeListHeading = "%nExit status (as autopkgtest-virt-unshare):%n",
    exitCodeList = {
      "0:The caller asked the server to quit.",
      "1:A bad option value.",
      "2:The command line does not parse.",
      "12:A failure the protocol reports (a bad request, a failed copy, end of input).",
      "16:An unexpected error (a host path that cannot be read or written)."
    },
    versionProvider = Main.Version.class,
    sortOptions = false,
    separator = " ")
final class VirtServerCommand implements Callable<Integer> {

  private static final int DEFAULT_COPY_TIMEOUT_SECONDS = 300;

  @Mixin TestbedOptions options;

  // Read by the frontend too, which runs this server in the shared engine or as a program of its
  // own.
  @Mixin EngineChoice engineChoice;

  @Option(
      names = {"-h", "--help"},
      usageHelp = true,
      description = "Show this help message and exit.")
  boolean help;

  // Not the reference's: it has none, and no option of its own that -V or --version could
  // abbreviate.
  @Option(
      names = {"-V", "--version"},
      versionHelp = true,
      description = "Show uchroot's version and exit.")
  boolean version;

  /** The frontend this server runs for in the shared engine; null for a server of its own. */
  private final EngineClient frontend;

  VirtServerCommand() {
    this(null);
  }

  VirtServerCommand(EngineClient frontend) {
    this.frontend = frontend;
  }

  @Override
  public Integer call() {
    if (frontend != null) {
      return serveFrontend();
    }
    Logging.start(options.debug);
    Map<String, String> env = System.getenv();
    // A missing tarball is only reported now: open fails, which is when the reference fails too.
    TestbedOptions.Choice choice = options.choose(env);
    if (choice.tarball().isEmpty()) {
      LoggerFactory.getLogger(VirtServerCommand.class).error(choice.missingTarball());
    }
    EngineConfig config = options.configure(Main.loadConfig());
    CompletableFuture<Engine> engine = CompletableFuture.supplyAsync(() -> Engine.start(config));
    warnOfOrphans(config);
    // Whatever else writes to System.out would corrupt the protocol: it goes to stderr instead.
    // The answers go unbuffered, and not through a PrintStream, which would hide a caller gone.
    OutputStream answers = new FileOutputStream(FileDescriptor.out);
    System.setOut(System.err);
    // The first "ok" says the server is ready: a client's first open then pays for the testbed
    // only. An engine that failed to start is reported by that open, as the reference reports
    // what keeps it from opening.
    engine.handle((started, failure) -> null).join();
    VirtServer server =
        new VirtServer(
            new VirtServer.Settings(
                () -> choice.spec(config.normalUser()),
                config.normalUser(),
                config.runtimeDir(),
                execProgram(config),
                copyTimeout(env),
                options.workingDirectory,
                options.aptProxy()),
            engine,
            new FileInputStream(FileDescriptor.in),
            answers,
            System.err);
    Signals.onTermination(server::terminate);
    Signals.onInterrupt(config.grace(), server::interruptCommands, server::killCommands);
    return server.serve();
  }

  /**
   * The server of a frontend, in the shared engine: its options, environment and working directory
   * are the frontend's, its testbed one session of the engine. Options that change the engine's own
   * settings send the frontend to a server of its own.
   */
  private int serveFrontend() {
    Optional<TestbedOptions.InEngine> inEngine = options.inEngine(frontend, engineChoice);
    if (inEngine.isEmpty()) {
      return 0;
    }
    TestbedOptions.InEngine session = inEngine.get();
    if (session.choice().tarball().isEmpty()) {
      LoggerFactory.getLogger(VirtServerCommand.class).error(session.choice().missingTarball());
    }
    EngineConfig config = session.config();
    VirtServer server =
        VirtServer.inSharedEngine(
            new VirtServer.Settings(
                session::spec,
                config.normalUser(),
                config.runtimeDir(),
                execProgram(config),
                copyTimeout(frontend.environment()),
                options.workingDirectory,
                options.aptProxy()),
            frontend.engine(),
            frontend.requests(),
            frontend.answers(),
            frontend.messages(),
            () ->
                frontend
                    .lendTerminal()
                    .orElseThrow(
                        () ->
                            new IOException(
                                "the frontend has no controlling terminal; run it from one, as"
                                    + " `autopkgtest --shell` is")));
    frontend.serving(server, session.asked().grace());
    return server.serve();
  }

  /**
   * What the options ask for that the shared engine does not do, or null: its ids are the same for
   * all its testbeds.
   */
  static String differences(EngineConfig shared, EngineConfig asked) {
    if (asked.privileged() == shared.privileged()) {
      return null;
    }
    return shared.privileged() ? "ids are the host's" : "ids are not the host's";
  }

  /** Testbeds that killed servers left behind take space until someone removes them. */
  private static void warnOfOrphans(EngineConfig config) {
    try {
      List<String> orphans = SessionsCommand.orphans(SessionRegistry.of(config));
      if (!orphans.isEmpty()) {
        LoggerFactory.getLogger(VirtServerCommand.class)
            .warn(
                "{} orphaned testbed(s) of killed servers: {}; remove them with"
                    + " `uchroot sessions cleanup --orphaned`",
                orphans.size(),
                String.join(", ", orphans));
      }
    } catch (RuntimeException e) {
      LoggerFactory.getLogger(VirtServerCommand.class)
          .debug("cannot list sessions: {}", e.toString());
    }
  }

  /** The program print-execute-command names: the C client, beside the job server. */
  static List<String> execProgram(EngineConfig config) {
    return List.of(config.libexecDir().resolve("uchroot-exec").toString());
  }

  private static Duration copyTimeout(Map<String, String> env) {
    try {
      return Duration.ofSeconds(
          Integer.parseInt(
              env.getOrDefault(
                  "AUTOPKGTEST_VIRT_COPY_TIMEOUT",
                  Integer.toString(DEFAULT_COPY_TIMEOUT_SECONDS))));
    } catch (NumberFormatException e) {
      throw new CliException(
          ExitCode.INVALID_ARGUMENT, "AUTOPKGTEST_VIRT_COPY_TIMEOUT is not a number of seconds");
    }
  }
}
