package org.uchroot.engine;

import akka.actor.typed.ActorSystem;
import akka.actor.typed.DispatcherSelector;
import akka.actor.typed.javadsl.Behaviors;
import akka.stream.Materializer;
import java.io.IOException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import org.uchroot.actors.SessionActor;
import org.uchroot.actors.SessionId;
import org.uchroot.actors.SessionManager;
import org.uchroot.actors.SessionSpec;

/**
 * The embedding entry point: one actor system hosting any number of sessions. Thread-safe. The
 * stages of {@link #open} and {@link #closeAll} complete on the engine's threads for blocking work.
 *
 * <pre>{@code
 * try (Engine engine = Engine.start(EngineConfig.load())) {
 *   Session session = engine.open(SessionSpec.of(Path.of("bookworm.tar"))).toCompletableFuture().join();
 *   ExitStatus status = session.run(List.of("true"), JobStdio...).toCompletableFuture().join();
 *   session.close().toCompletableFuture().join();
 * }
 * }</pre>
 */
public final class Engine implements AutoCloseable {

  private static final Duration OPEN_TIMEOUT = Duration.ofHours(1);
  private static final SecureRandom RANDOM = new SecureRandom();
  private static final String BLOCKING_DISPATCHER = "uchroot-blocking-dispatcher";

  private final EngineConfig config;
  private final ActorSystem<SessionManager.Command> system;

  /** Where the stages of this API complete: callbacks may block there. */
  private final Executor blocking;

  /** Set as the guardian starts, so surely once a request to it has been answered. */
  private final CompletableFuture<TestbedTeardown> teardown;

  private Engine(
      EngineConfig config,
      ActorSystem<SessionManager.Command> system,
      CompletableFuture<TestbedTeardown> teardown) {
    this.config = config;
    this.system = system;
    this.teardown = teardown;
    this.blocking = system.dispatchers().lookup(DispatcherSelector.fromConfig(BLOCKING_DISPATCHER));
  }

  /** Starts an engine; {@link #close()} ends every session it still has, then the engine. */
  public static Engine start(EngineConfig config) {
    LockFile.prepareInBackground();
    // Checked before any actor exists: without subordinate ids no testbed can be made.
    IdMapping mapping = Host.idMapping(config);
    CompletableFuture<TestbedTeardown> teardown = new CompletableFuture<>();
    ActorSystem<SessionManager.Command> system =
        ActorSystem.create(
            Behaviors.setup(
                context -> {
                  Executor blocking =
                      context
                          .getSystem()
                          .dispatchers()
                          .lookup(DispatcherSelector.fromConfig(BLOCKING_DISPATCHER));
                  Executor io =
                      context
                          .getSystem()
                          .dispatchers()
                          .lookup(DispatcherSelector.fromConfig("uchroot-io-dispatcher"));
                  SessionRegistry registry = SessionRegistry.of(config);
                  SafeRemover remover = new SafeRemover(mapping, config.libexecDir());
                  TestbedTeardown takesDown =
                      new TestbedTeardown(
                          remover, registry, blocking, context.getSystem().scheduler());
                  teardown.complete(takesDown);
                  SessionActor.Ports ports =
                      new SessionActor.Ports(
                          new LinuxProvisioner(
                              config, mapping, registry, remover, takesDown, blocking),
                          new LinuxJobLauncher(io),
                          takesDown,
                          config.grace());
                  return SessionManager.create(ports, Engine::newSessionId);
                }),
            "uchroot",
            config.config());
    return new Engine(config, system, teardown);
  }

  public EngineConfig config() {
    return config;
  }

  /**
   * Runs streams on the engine's actor system: a batch's jobs, each with testbeds of this engine.
   * The streams end with the engine.
   */
  public Materializer materializer() {
    return Materializer.matFromSystem(system);
  }

  /**
   * Starts {@code argv} on the host as the engine starts its own helpers: in a session of its own,
   * so that a Ctrl+C on the terminal leaves it alone; ended with whatever it started when the
   * engine dies or when it gets SIGTERM ({@link Process#destroy}); with the helpers' {@code PATH}
   * as its whole environment. For the host's side of a copy.
   */
  public HostProcess startOnHost(List<String> argv, ProcessBuilder.Redirect stdin)
      throws IOException {
    Process process =
        HelperProcess.start(HelperProcess.builder(config.libexecDir(), argv).redirectInput(stdin));
    return new HostProcess(
        process,
        CompletableFuture.supplyAsync(
            () -> HelperProcess.drain(process.getErrorStream()), blocking));
  }

  /** Provisions a testbed; fails with {@link UchrootException} saying why it could not. */
  public CompletionStage<Session> open(SessionSpec spec) {
    return Asks.<SessionManager.Command, SessionActor.OpenReply>ask(
            system,
            replyTo -> new SessionManager.OpenSession(spec, replyTo),
            OPEN_TIMEOUT,
            system.scheduler(),
            blocking)
        .thenApply(
            reply -> {
              if (reply instanceof SessionActor.Opened opened) {
                return new Session(
                    opened.session(), opened.testbed(), opened.ref(), system, blocking);
              }
              throw new UchrootException(((SessionActor.OpenFailed) reply).reason());
            });
  }

  /** Interrupts the commands of every session, as a Ctrl+C asks; no session is closed. */
  public void interruptAll() {
    system.tell(new SessionManager.InterruptAll());
  }

  /** Kills the commands of every session at once, as a second Ctrl+C asks; no session is closed. */
  public void killAll() {
    system.tell(new SessionManager.KillAll());
  }

  /** Closes every session; completes with how many were closed. */
  public CompletionStage<Integer> closeAll() {
    return Asks.<SessionManager.Command, SessionManager.AllClosed>ask(
            system, SessionManager.CloseAll::new, Duration.ofHours(6), system.scheduler(), blocking)
        .thenApply(SessionManager.AllClosed::sessions);
  }

  /**
   * Closes every session, waiting until each testbed is taken down and its namespaces have ended,
   * then stops the engine: no process of the engine outlives it. An open or a revert under way is
   * aborted first: its helpers are killed, and what it made is removed as after any failed open.
   */
  @Override
  public void close() {
    HelperProcess.abortSetUps();
    try {
      closeAll().toCompletableFuture().get(6, TimeUnit.HOURS);
    } catch (Exception e) {
      throw new UchrootException("could not close every session: " + e.getMessage(), e);
    } finally {
      TestbedTeardown started = teardown.getNow(null);
      if (started != null) {
        started.awaitEnds();
      }
      system.terminate();
      system.getWhenTerminated().toCompletableFuture().join();
    }
  }

  private static SessionId newSessionId() {
    byte[] bytes = new byte[4];
    RANDOM.nextBytes(bytes);
    return new SessionId("s" + HexFormat.of().formatHex(bytes));
  }
}
