package org.uchroot.engine;

import akka.actor.typed.ActorRef;
import akka.actor.typed.ActorSystem;
import akka.actor.typed.Props;
import akka.actor.typed.javadsl.Behaviors;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import java.util.concurrent.atomic.AtomicLong;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobActor;
import org.uchroot.actors.JobId;
import org.uchroot.actors.JobSpec;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.SessionActor;
import org.uchroot.actors.SessionId;
import org.uchroot.actors.Testbed;

/**
 * An open testbed of an {@link Engine}. Thread-safe; every method returns at once and completes its
 * stage when the session has done the work. The stages of {@link #revert}, {@link #close}, {@link
 * #status} and {@link #interrupt} complete on the engine's threads for blocking work, where a
 * callback may block; a {@link Job}'s complete on an actor's thread.
 */
public final class Session {

  /** Long enough for any grace period plus the removal of a large rootfs. */
  private static final Duration LONG = Duration.ofHours(6);

  private static final Duration SHORT = Duration.ofSeconds(30);
  private static final AtomicLong REPLY_ACTORS = new AtomicLong();

  private final SessionId id;
  private final ActorRef<SessionActor.Command> ref;
  private final ActorSystem<?> system;
  private final Executor blocking;
  private volatile Testbed testbed;

  Session(
      SessionId id,
      Testbed testbed,
      ActorRef<SessionActor.Command> ref,
      ActorSystem<?> system,
      Executor blocking) {
    this.id = id;
    this.testbed = testbed;
    this.ref = ref;
    this.system = system;
    this.blocking = blocking;
  }

  public SessionId id() {
    return id;
  }

  /** The host directory that is {@code /} in the testbed. */
  public Path rootfs() {
    return testbed.rootfs();
  }

  /** The scratch directory inside the testbed; the same across reverts. */
  public String scratch() {
    return testbed.scratch();
  }

  /** The scratch directory as a host path. */
  public Path scratchOnHost() {
    return NamespaceSandbox.of(testbed).hostScratch();
  }

  /** Starts {@code argv} in the testbed with the given streams. */
  public Job start(List<String> argv, JobStdio stdio) {
    CompletableFuture<JobId> started = new CompletableFuture<>();
    CompletableFuture<ExitStatus> result = new CompletableFuture<>();
    ActorRef<JobActor.Reply> replies =
        system.systemActorOf(
            replyCollector(started, result),
            "job-replies-" + REPLY_ACTORS.incrementAndGet(),
            Props.empty());
    ref.tell(new SessionActor.RunJob(new JobSpec(argv, stdio), replies));
    return new StartedJob(started, result);
  }

  /** Runs {@code argv} to its end. */
  public CompletionStage<ExitStatus> run(List<String> argv, JobStdio stdio) {
    return start(argv, stdio).result();
  }

  /** Interrupts every running command; the testbed stays open. Completes with how many. */
  public CompletionStage<Integer> interrupt() {
    return Asks.<SessionActor.Command, SessionActor.JobsInterrupted>ask(
            ref, SessionActor.InterruptJobs::new, SHORT, system.scheduler(), blocking)
        .thenApply(SessionActor.JobsInterrupted::jobs);
  }

  /**
   * Kills every running command at once, wherever its interrupt stands; the testbed stays open.
   * Completes with how many.
   */
  public CompletionStage<Integer> kill() {
    return Asks.<SessionActor.Command, SessionActor.JobsInterrupted>ask(
            ref, SessionActor.KillJobs::new, SHORT, system.scheduler(), blocking)
        .thenApply(SessionActor.JobsInterrupted::jobs);
  }

  public CompletionStage<SessionStatus> status() {
    return Asks.<SessionActor.Command, SessionActor.Status>ask(
            ref, SessionActor.GetStatus::new, SHORT, system.scheduler(), blocking)
        .thenApply(SessionStatus::of);
  }

  /** Ends what runs, and makes the testbed afresh, with the same scratch path. */
  public CompletionStage<Void> revert() {
    return Asks.<SessionActor.Command, SessionActor.RevertReply>ask(
            ref, SessionActor.Revert::new, LONG, system.scheduler(), blocking)
        .thenApply(
            reply -> {
              if (reply instanceof SessionActor.Reverted reverted) {
                testbed = reverted.testbed();
                return null;
              }
              throw new UchrootException(((SessionActor.RevertFailed) reply).reason());
            });
  }

  /**
   * Interrupts what still runs, waits until every command has released the rootfs, ends the
   * namespaces and removes the rootfs; completes after the removal.
   */
  public CompletionStage<Void> close() {
    return askClose(blocking).thenApply(Session::closed);
  }

  /**
   * Closes as {@link #close} does, and blocks until the rootfs is removed: the answer wakes the
   * caller straight from the session's actor, not through the engine's blocking threads.
   *
   * @throws UchrootException if the testbed could not be closed
   */
  public void closeAndWait() {
    SessionActor.CloseReply reply;
    try {
      reply = askClose(Asks.DIRECT).join();
    } catch (CompletionException e) {
      throw new UchrootException("cannot close the testbed: " + e.getCause(), e);
    }
    closed(reply);
  }

  private CompletableFuture<SessionActor.CloseReply> askClose(Executor answeredOn) {
    return Asks.<SessionActor.Command, SessionActor.CloseReply>ask(
        ref, SessionActor.Close::new, LONG, system.scheduler(), answeredOn);
  }

  private static Void closed(SessionActor.CloseReply reply) {
    if (reply instanceof SessionActor.CloseFailed failed) {
      throw new UchrootException(failed.reason());
    }
    return null;
  }

  private static akka.actor.typed.Behavior<JobActor.Reply> replyCollector(
      CompletableFuture<JobId> started, CompletableFuture<ExitStatus> result) {
    return Behaviors.receive(JobActor.Reply.class)
        .onMessage(
            JobActor.JobStarted.class,
            msg -> {
              started.complete(msg.job());
              return Behaviors.same();
            })
        .onMessage(
            JobActor.JobCompleted.class,
            msg -> {
              result.complete(msg.status());
              return Behaviors.stopped();
            })
        .onMessage(
            JobActor.JobFailed.class,
            msg -> {
              UchrootException error = new UchrootException(msg.reason());
              started.completeExceptionally(error);
              result.completeExceptionally(error);
              return Behaviors.stopped();
            })
        .onMessage(
            JobActor.JobRejected.class,
            msg -> {
              UchrootException error = new UchrootException(msg.reason());
              started.completeExceptionally(error);
              result.completeExceptionally(error);
              return Behaviors.stopped();
            })
        .build();
  }

  private final class StartedJob implements Job {
    private final CompletableFuture<JobId> started;
    private final CompletableFuture<ExitStatus> result;

    StartedJob(CompletableFuture<JobId> started, CompletableFuture<ExitStatus> result) {
      this.started = started;
      this.result = result;
    }

    @Override
    public JobId id() {
      return started.join();
    }

    @Override
    public CompletionStage<ExitStatus> result() {
      return result;
    }

    @Override
    public void interrupt() {
      // An interrupt that arrives before the job is known still reaches it once it is.
      started.thenAccept(job -> ref.tell(new SessionActor.InterruptJob(job)));
    }
  }
}
