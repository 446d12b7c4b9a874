package org.uchroot.adapter.cli;

import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.PrintWriter;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import org.slf4j.LoggerFactory;
import org.uchroot.adapter.service.EngineRequest;
import org.uchroot.adapter.service.EngineService;
import org.uchroot.engine.Engine;
import org.uchroot.engine.EngineConfig;
import org.uchroot.engine.Host;
import org.uchroot.engine.LockFile;
import org.uchroot.engine.SessionRegistry;
import org.uchroot.engine.UchrootException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code uchroot engine}: the user's shared engine, which serves the testbeds of every frontend
 * ({@code autopkgtest-virt-uchroot}) in one JVM. Frontends start it themselves when it is not
 * running; this command starts it ahead, runs it in the foreground (for a systemd user service),
 * describes it or stops it.
 */
@Command(
    name = "engine",
    mixinStandardHelpOptions = true,
    description = {
      "Start the user's shared engine in the background, or serve in the foreground.",
      "Frontends start it on demand; it ends after its idle time without frontends, or when its"
          + " socket is removed."
    },
    subcommands = {EngineCommand.Status.class, EngineCommand.Stop.class})
final class EngineCommand implements Callable<Integer> {

  /** How long a start may take before the starter gives up: a cold JVM on a loaded machine. */
  private static final Duration START_TIMEOUT = Duration.ofSeconds(60);

  /** The log of a background engine is started again above this size, the last one kept. */
  private static final long LOG_ROTATE_BYTES = 16L << 20;

  /**
   * The status of {@code --unless-default-standalone} where the default is standalone (frontend.c
   * knows it as ENGINE_NOT_CHOSEN).
   */
  static final int NOT_CHOSEN = 3;

  @Spec CommandSpec spec;

  @Option(
      names = "--foreground",
      description = "Serve in this process, logging to stderr, until stopped or idle.")
  boolean foreground;

  // A frontend's start: it holds the start lock, and the engine's stderr is not a terminal.
  @Option(names = "--detached", hidden = true)
  boolean detached;

  // The start of a frontend that chose no engine: uchroot.engine.default decides, and the frontend
  // runs a server of its own on NOT_CHOSEN.
  @Option(names = "--unless-default-standalone", hidden = true)
  boolean unlessDefaultStandalone;

  @Option(
      names = "--idle-timeout",
      paramLabel = "DURATION",
      converter = TestbedOptions.DurationConverter.class,
      description = "End after this long without a frontend (default: conf, engine.idle-timeout).")
  Duration idleTimeout;

  @Option(
      names = {"-d", "--debug"},
      description = "Log the engine's own work at debug level.")
  boolean debug;

  @Override
  public Integer call() throws IOException {
    if (foreground || detached) {
      return serve();
    }
    return startInBackground();
  }

  private int serve() throws IOException {
    EngineConfig config = Main.loadConfig();
    if (unlessDefaultStandalone
        && EngineChoice.defaultMode(config.config()) == EngineChoice.Mode.standalone) {
      return NOT_CHOSEN;
    }
    PrintStream log = detached ? logFile(config) : System.err;
    System.setErr(log);
    Logging.start(debug);
    // Nothing of the engine's may reach a terminal or pipe it inherited.
    System.setOut(log);
    Duration idle =
        idleTimeout != null
            ? idleTimeout
            : config.config().getDuration("uchroot.engine.idle-timeout");
    ServerSocketChannel server;
    Path runtimeDir = config.runtimeDir();
    if (detached) {
      server = EngineService.bind(runtimeDir);
    } else {
      SessionRegistry.requirePrivateRuntimeDir(runtimeDir);
      try (LockFile starting = LockFile.acquire(runtimeDir.resolve(EngineService.START_LOCK))) {
        server = EngineService.bind(runtimeDir);
      }
    }
    EngineService.routeLogs(log);
    Engine engine = Engine.start(config);
    EngineService service =
        EngineService.on(server, runtimeDir, engine, idle, Main::runForFrontend);
    Signals.on("TERM", () -> stopInBackground(service, "SIGTERM"));
    Signals.on("HUP", () -> stopInBackground(service, "SIGHUP"));
    Signals.on("INT", () -> stopInBackground(service, "SIGINT"));
    String reason = service.serve();
    LoggerFactory.getLogger(EngineCommand.class).info("engine stopped: {}", reason);
    return 0;
  }

  private static void stopInBackground(EngineService service, String reason) {
    Thread stopping = new Thread(() -> service.stop(reason), "uchroot-engine-stop");
    stopping.start();
  }

  /** {@code STATE/engine.log}, the previous one kept as {@code engine.log.1} once it is big. */
  private static PrintStream logFile(EngineConfig config) throws IOException {
    Path dir = Files.createDirectories(config.stateDir());
    Path log = dir.resolve("engine.log");
    if (Files.isRegularFile(log) && Files.size(log) > LOG_ROTATE_BYTES) {
      Files.move(log, dir.resolve("engine.log.1"), StandardCopyOption.REPLACE_EXISTING);
    }
    OutputStream file =
        Files.newOutputStream(log, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
    return new PrintStream(file, true, StandardCharsets.UTF_8);
  }

  /**
   * Starts an engine in its own session, detached from this terminal, and returns once it answers;
   * frontends do the same themselves.
   */
  private int startInBackground() throws IOException {
    PrintWriter out = spec.commandLine().getOut();
    EngineConfig config = Main.loadConfig();
    Path runtimeDir = config.runtimeDir();
    Path socket = EngineService.socketIn(runtimeDir);
    SessionRegistry.requirePrivateRuntimeDir(runtimeDir);
    try (LockFile starting = LockFile.acquire(runtimeDir.resolve(EngineService.START_LOCK))) {
      if (EngineService.answers(socket)) {
        out.println("the engine is running already: " + socket);
        return 0;
      }
      String home = System.getProperty("uchroot.home");
      if (home == null) {
        throw new UchrootException(
            "cannot start an engine: uchroot.home is not set; run uchroot from its bin/ directory");
      }
      Process process =
          new ProcessBuilder(
                  List.of(
                      "setsid", Path.of(home, "bin", "uchroot").toString(), "engine", "--detached"))
              .directory(Path.of("/").toFile())
              .redirectInput(ProcessBuilder.Redirect.from(Path.of("/dev/null").toFile()))
              .redirectOutput(ProcessBuilder.Redirect.DISCARD)
              .redirectError(ProcessBuilder.Redirect.DISCARD)
              .start();
      Instant deadline = Instant.now().plus(START_TIMEOUT);
      while (!EngineService.answers(socket)) {
        if (!process.isAlive() || Instant.now().isAfter(deadline)) {
          throw new UchrootException(
              "the engine did not start; its log is " + config.stateDir().resolve("engine.log"));
        }
        try {
          Thread.sleep(20);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new UchrootException("interrupted while the engine started");
        }
      }
      out.println("engine started: " + socket);
      return 0;
    }
  }

  /** Sends {@code request} to the engine, its answer to the command's streams. */
  private static OptionalInt request(CommandSpec spec, Path socket, String request)
      throws IOException {
    return EngineRequest.send(
        socket, request, spec.commandLine().getOut(), spec.commandLine().getErr());
  }

  @Command(
      name = "status",
      mixinStandardHelpOptions = true,
      description = "Describe the user's engine: pid, uptime, frontends, memory.",
      exitCodeListHeading = "%nExit status:%n",
      exitCodeList = {"0:The engine is running.", "3:No engine is running."})
  static final class Status implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Override
    public Integer call() throws IOException {
      Path socket = EngineService.socketIn(Main.loadConfig().runtimeDir());
      OptionalInt answered = request(spec, socket, "status");
      if (answered.isEmpty()) {
        spec.commandLine()
            .getOut()
            .println(
                "no engine is running for "
                    + Host.userName()
                    + " (none answers on "
                    + socket
                    + ")");
        return 3;
      }
      return answered.getAsInt();
    }
  }

  @Command(
      name = "stop",
      mixinStandardHelpOptions = true,
      description = "Stop the user's engine, closing every testbed it serves first.")
  static final class Stop implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Override
    public Integer call() throws IOException {
      OptionalInt answered =
          request(spec, EngineService.socketIn(Main.loadConfig().runtimeDir()), "stop");
      if (answered.isEmpty()) {
        spec.commandLine().getOut().println("no engine is running for " + Host.userName());
        return 0;
      }
      return answered.getAsInt();
    }
  }
}
