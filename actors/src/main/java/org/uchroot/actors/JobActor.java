package org.uchroot.actors;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.javadsl.TimerScheduler;
import java.util.Optional;

/**
 * One command of a session: starts it through the {@link JobLauncher}, relays its exit status to
 * whoever asked for it, and tells its session {@link SessionActor.JobFinished} and then {@link
 * SessionActor.MountsReleased} once no process of it remains. An interrupt escalates SIGINT, then
 * SIGTERM, then a kill of the whole tree, spaced by the session's {@link GracePeriods}.
 */
public final class JobActor {

  public sealed interface Command {}

  /** Ask the command to stop: SIGINT now, then escalate until it is gone. */
  public record Interrupt() implements Command {}

  /** Kill the command's whole tree now, wherever its escalation stands: a second Ctrl+C. */
  public record Kill() implements Command {}

  private record Started(JobLauncher.RunningJob job) implements Command {}

  private record LaunchFailed(Throwable cause) implements Command {}

  private record Exited(ExitStatus status) implements Command {}

  private record WaitFailed(Throwable cause) implements Command {}

  private record Escalate(Signal signal) implements Command {}

  /** What the requester of a job hears, in this order: started, then completed or failed. */
  public sealed interface Reply {}

  public record JobStarted(JobId job) implements Reply {}

  public record JobCompleted(JobId job, ExitStatus status) implements Reply {}

  /** The job could not run (or its end could not be observed); {@code reason} is one line. */
  public record JobFailed(JobId job, String reason) implements Reply {}

  /** The session no longer takes commands; no job was made. */
  public record JobRejected(String reason) implements Reply {}

  public static Behavior<Command> create(
      JobId id,
      Testbed testbed,
      JobSpec spec,
      JobLauncher launcher,
      GracePeriods grace,
      ActorRef<SessionActor.Command> session,
      ActorRef<Reply> replyTo) {
    return Behaviors.setup(
        context ->
            Behaviors.withTimers(
                timers -> {
                  context.pipeToSelf(
                      launcher.launch(testbed, id, spec),
                      (job, error) -> job != null ? new Started(job) : new LaunchFailed(error));
                  return new JobActor(id, grace, session, replyTo, context, timers)
                      .starting(Optional.empty());
                }));
  }

  private final JobId id;
  private final GracePeriods grace;
  private final ActorRef<SessionActor.Command> session;
  private final ActorRef<Reply> replyTo;
  private final ActorContext<Command> context;
  private final TimerScheduler<Command> timers;

  private JobActor(
      JobId id,
      GracePeriods grace,
      ActorRef<SessionActor.Command> session,
      ActorRef<Reply> replyTo,
      ActorContext<Command> context,
      TimerScheduler<Command> timers) {
    this.id = id;
    this.grace = grace;
    this.session = session;
    this.replyTo = replyTo;
    this.context = context;
    this.timers = timers;
  }

  /**
   * Waiting for the process to exist; an interrupt or a kill is remembered as the signal to begin
   * with, and delivered once it does.
   */
  private Behavior<Command> starting(Optional<Signal> requested) {
    return Behaviors.receive(Command.class)
        .onMessage(
            Interrupt.class,
            msg -> requested.isPresent() ? Behaviors.same() : starting(Optional.of(Signal.INT)))
        .onMessage(Kill.class, msg -> starting(Optional.of(Signal.KILL)))
        .onMessage(
            Started.class,
            msg -> {
              replyTo.tell(new JobStarted(id));
              context.pipeToSelf(
                  msg.job().finished(),
                  (status, error) -> status != null ? new Exited(status) : new WaitFailed(error));
              return requested
                  .map(signal -> interrupting(msg.job(), signal))
                  .orElseGet(() -> running(msg.job()));
            })
        .onMessage(
            LaunchFailed.class,
            msg -> {
              context
                  .getLog()
                  .warn("job {} could not start: {}", id, OneLineMessage.of(msg.cause()));
              // Nothing was started, so nothing holds a mount.
              session.tell(new SessionActor.JobFinished(id, Optional.empty()));
              session.tell(new SessionActor.MountsReleased(id));
              replyTo.tell(new JobFailed(id, OneLineMessage.of(msg.cause())));
              return Behaviors.stopped();
            })
        .build();
  }

  private Behavior<Command> running(JobLauncher.RunningJob job) {
    return Behaviors.receive(Command.class)
        .onMessage(Interrupt.class, msg -> interrupting(job, Signal.INT))
        .onMessage(Kill.class, msg -> interrupting(job, Signal.KILL))
        .onMessage(Exited.class, this::onExited)
        .onMessage(WaitFailed.class, this::onWaitFailed)
        .build();
  }

  /** Delivers {@code signal} and schedules the next step of the escalation. */
  private Behavior<Command> interrupting(JobLauncher.RunningJob job, Signal signal) {
    context.getLog().debug("job {}: sending SIG{}", id, signal);
    job.signal(signal);
    switch (signal) {
      case INT, HUP -> timers.startSingleTimer(new Escalate(Signal.TERM), grace.beforeTerm());
      case TERM -> timers.startSingleTimer(new Escalate(Signal.KILL), grace.beforeKill());
      case KILL -> timers.cancelAll();
    }
    return Behaviors.receive(Command.class)
        // A second interrupt does not restart the escalation; a kill ends it now.
        .onMessage(Interrupt.class, msg -> Behaviors.same())
        .onMessage(
            Kill.class,
            msg -> signal == Signal.KILL ? Behaviors.same() : interrupting(job, Signal.KILL))
        .onMessage(Escalate.class, msg -> interrupting(job, msg.signal()))
        .onMessage(Exited.class, this::onExited)
        .onMessage(WaitFailed.class, this::onWaitFailed)
        .build();
  }

  private Behavior<Command> onExited(Exited msg) {
    // The session hears first: whoever learns the status and then asks the session about its
    // jobs must find this one gone.
    session.tell(new SessionActor.JobFinished(id, Optional.of(msg.status())));
    session.tell(new SessionActor.MountsReleased(id));
    replyTo.tell(new JobCompleted(id, msg.status()));
    return Behaviors.stopped();
  }

  private Behavior<Command> onWaitFailed(WaitFailed msg) {
    replyTo.tell(new JobFailed(id, OneLineMessage.of(msg.cause())));
    // The launcher lost track of the job, a broken invariant: fail, and let the session, which
    // watches this actor, count the job as gone; only the end of its namespaces makes sure.
    throw new IllegalStateException("lost track of job " + id, msg.cause());
  }
}
