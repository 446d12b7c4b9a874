package org.uchroot.actors;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.javadsl.StashBuffer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * One testbed. Provisions it, runs each command as a {@link JobActor}, and ends it on {@link Close}
 * or {@link Revert}: every job still running is interrupted, and only once each has reported {@link
 * MountsReleased} is the testbed handed to a {@link CleanupActor}, which has its namespaces ended
 * and its rootfs removed. An {@link InterruptJobs} stops the commands but leaves the testbed open,
 * so the client can still run its own cleanup in it.
 *
 * <p>States: opening, open (or interrupted, which behaves the same), closing, reverting; the actor
 * stops once closed.
 */
public final class SessionActor {

  public sealed interface Command {}

  /** Run a command; the requester hears {@link JobActor.Reply}s. */
  public record RunJob(JobSpec spec, ActorRef<JobActor.Reply> replyTo) implements Command {}

  /** Interrupt every running command, keeping the testbed open. */
  public record InterruptJobs(ActorRef<JobsInterrupted> replyTo) implements Command {}

  /**
   * Kill every running command at once, wherever its interrupt stands (a second Ctrl+C), keeping
   * the testbed open; while the testbed ends, its draining commands are killed.
   */
  public record KillJobs(ActorRef<JobsInterrupted> replyTo) implements Command {}

  /** Interrupt one command, as its exec program asks when it is signalled. */
  public record InterruptJob(JobId job) implements Command {}

  public record GetStatus(ActorRef<Status> replyTo) implements Command {}

  public record Close(ActorRef<CloseReply> replyTo) implements Command {}

  public record Revert(ActorRef<RevertReply> replyTo) implements Command {}

  /** From a job: its command ended (empty when it never started). */
  public record JobFinished(JobId job, Optional<ExitStatus> status) implements Command {}

  /** From a job: no process of it remains, so it holds nothing in the rootfs any more. */
  public record MountsReleased(JobId job) implements Command {}

  /** From the CleanupActor: the testbed's namespaces and rootfs are gone. */
  public record RootfsRemoved(Path rootfs) implements Command {}

  /**
   * From the CleanupActor: the namespaces could not be ended, or not all of the rootfs deleted;
   * {@code reason} is one line.
   */
  public record RemovalFailed(Path rootfs, String reason) implements Command {}

  private record JobStopped(JobId job) implements Command {}

  private record Provisioned(Testbed testbed) implements Command {}

  private record ProvisionFailed(Throwable cause) implements Command {}

  public sealed interface OpenReply {}

  public record Opened(SessionId session, Testbed testbed, ActorRef<Command> ref)
      implements OpenReply {}

  public record OpenFailed(SessionId session, String reason) implements OpenReply {}

  public sealed interface CloseReply {}

  public record Closed(SessionId session) implements CloseReply {}

  public record CloseFailed(SessionId session, String reason) implements CloseReply {}

  public sealed interface RevertReply {}

  public record Reverted(Testbed testbed) implements RevertReply {}

  /** The testbed could not be made again; the session has ended. */
  public record RevertFailed(String reason) implements RevertReply {}

  public record JobsInterrupted(int jobs) {}

  public enum State {
    OPENING,
    OPEN,
    INTERRUPTED,
    REVERTING,
    CLOSING
  }

  public record Status(SessionId session, State state, int runningJobs, int interrupts) {}

  /** The ports and settings a session works with. */
  public record Ports(
      TestbedProvisioner provisioner,
      JobLauncher launcher,
      TestbedRemover remover,
      GracePeriods grace) {}

  public static Behavior<Command> create(
      SessionId id, SessionSpec spec, Ports ports, ActorRef<OpenReply> replyTo) {
    return Behaviors.withStash(
        1000,
        stash ->
            Behaviors.setup(
                context -> {
                  SessionActor session = new SessionActor(id, spec, ports, context, stash);
                  session.provision(Optional.empty());
                  return session.opening(replyTo);
                }));
  }

  private final SessionId id;
  private final SessionSpec spec;
  private final Ports ports;
  private final ActorContext<Command> context;
  private final StashBuffer<Command> stash;
  private final ActorRef<CleanupActor.Command> cleanup;

  /** Jobs that have not yet released their mounts. */
  private final Map<JobId, ActorRef<JobActor.Command>> jobs = new LinkedHashMap<>();

  /*
   * The states a testbed ends through, built once, as the session opens: each handler is a
   * serializable lambda, whose class the JVM's class data archive cannot keep and makes anew, about
   * half a millisecond, the first time it is reached; made at every close and revert, they would
   * cost that on the path the client waits on.
   */
  private final Behavior<Command> draining;
  private final Behavior<Command> removing;

  /** Who asked for the testbed's end: every Close, or the one Revert. */
  private final List<ActorRef<CloseReply>> closeRequests = new ArrayList<>();

  private ActorRef<RevertReply> revertRequest;

  /** CLOSING or REVERTING, once the testbed is ending. */
  private State ending;

  private Testbed testbed;
  private long lastJob;
  private int interrupts;
  private boolean interrupted;

  private SessionActor(
      SessionId id,
      SessionSpec spec,
      Ports ports,
      ActorContext<Command> context,
      StashBuffer<Command> stash) {
    this.id = id;
    this.spec = spec;
    this.ports = ports;
    this.context = context;
    this.stash = stash;
    this.cleanup = context.spawn(CleanupActor.create(ports.remover()), "cleanup");
    this.draining = Behaviors.receive(Command.class).onAnyMessage(this::whileDraining).build();
    this.removing = Behaviors.receive(Command.class).onAnyMessage(this::whileRemoving).build();
  }

  private Behavior<Command> opening(ActorRef<OpenReply> replyTo) {
    return Behaviors.receive(Command.class)
        .onMessage(
            Provisioned.class,
            msg -> {
              testbed = msg.testbed();
              context.getLog().debug("session {} open on {}", id, testbed.rootfs());
              replyTo.tell(new Opened(id, testbed, context.getSelf()));
              return stash.unstashAll(open());
            })
        .onMessage(
            ProvisionFailed.class,
            msg -> {
              String reason = OneLineMessage.of(msg.cause());
              replyTo.tell(new OpenFailed(id, reason));
              return stopAfterFailure("the testbed could not be opened: " + reason);
            })
        .onMessage(GetStatus.class, msg -> replyStatus(msg, State.OPENING))
        .onAnyMessage(
            msg -> {
              stash.stash(msg);
              return Behaviors.same();
            })
        .build();
  }

  private Behavior<Command> open() {
    return Behaviors.receive(Command.class)
        .onMessage(RunJob.class, this::onRunJob)
        .onMessage(
            InterruptJobs.class,
            msg -> {
              interruptAll(msg.replyTo());
              return Behaviors.same();
            })
        .onMessage(
            KillJobs.class,
            msg -> {
              interrupted = true;
              tellJobs(new JobActor.Kill(), msg.replyTo());
              return Behaviors.same();
            })
        .onMessage(InterruptJob.class, this::onInterruptJob)
        .onMessage(
            GetStatus.class, msg -> replyStatus(msg, interrupted ? State.INTERRUPTED : State.OPEN))
        .onMessage(JobFinished.class, this::onJobFinished)
        .onMessage(MountsReleased.class, msg -> onJobGone(msg.job()))
        .onMessage(JobStopped.class, msg -> onJobGone(msg.job()))
        .onMessage(Close.class, this::onClose)
        .onMessage(Revert.class, this::onRevert)
        .build();
  }

  private Behavior<Command> onRunJob(RunJob msg) {
    JobId job = new JobId(id, ++lastJob);
    ActorRef<JobActor.Command> ref =
        context.spawn(
            JobActor.create(
                job,
                testbed,
                msg.spec(),
                ports.launcher(),
                spec.grace().orElse(ports.grace()),
                context.getSelf(),
                msg.replyTo()),
            "job-" + job.sequence());
    context.watchWith(ref, new JobStopped(job));
    jobs.put(job, ref);
    return Behaviors.same();
  }

  private void interruptAll(ActorRef<JobsInterrupted> replyTo) {
    interrupts++;
    interrupted = true;
    tellJobs(new JobActor.Interrupt(), replyTo);
  }

  /** Tells every job {@code command}, and {@code replyTo} how many jobs heard it. */
  private void tellJobs(JobActor.Command command, ActorRef<JobsInterrupted> replyTo) {
    jobs.values().forEach(job -> job.tell(command));
    context.getLog().debug("session {}: {} to {} running job(s)", id, command, jobs.size());
    replyTo.tell(new JobsInterrupted(jobs.size()));
  }

  private Behavior<Command> onInterruptJob(InterruptJob msg) {
    ActorRef<JobActor.Command> job = jobs.get(msg.job());
    if (job != null) {
      job.tell(new JobActor.Interrupt());
    }
    return Behaviors.same();
  }

  private Behavior<Command> onJobFinished(JobFinished msg) {
    context.getLog().debug("job {} finished: {}", msg.job(), msg.status());
    return Behaviors.same();
  }

  private Behavior<Command> onJobGone(JobId job) {
    jobs.remove(job);
    return Behaviors.same();
  }

  private Behavior<Command> replyStatus(GetStatus msg, State state) {
    msg.replyTo().tell(new Status(id, state, jobs.size(), interrupts));
    return Behaviors.same();
  }

  private Behavior<Command> onClose(Close msg) {
    closeRequests.add(msg.replyTo());
    return end(State.CLOSING);
  }

  private Behavior<Command> onRevert(Revert msg) {
    revertRequest = msg.replyTo();
    return end(State.REVERTING);
  }

  /**
   * The common path of close and revert. Interrupts what still runs, waits for every job's
   * MountsReleased, then hands the testbed to the CleanupActor, which has its namespaces ended and
   * its rootfs removed.
   */
  private Behavior<Command> end(State how) {
    ending = how;
    if (jobs.isEmpty()) {
      removeTestbed();
      return removing;
    }
    jobs.values().forEach(job -> job.tell(new JobActor.Interrupt()));
    context.getLog().debug("session {}: waiting for {} job(s) to release mounts", id, jobs.size());
    return draining;
  }

  private Behavior<Command> whileDraining(Command msg) {
    if (msg instanceof MountsReleased released) {
      return afterJobGone(released.job());
    } else if (msg instanceof JobStopped stopped) {
      return afterJobGone(stopped.job());
    } else if (msg instanceof JobFinished finished) {
      return onJobFinished(finished);
    } else if (msg instanceof GetStatus status) {
      return replyStatus(status, ending);
    } else if (msg instanceof InterruptJobs interrupt) {
      // Every job is already being interrupted by the drain.
      interrupt.replyTo().tell(new JobsInterrupted(jobs.size()));
      return Behaviors.same();
    } else if (msg instanceof KillJobs kill) {
      tellJobs(new JobActor.Kill(), kill.replyTo());
      return Behaviors.same();
    } else if (msg instanceof InterruptJob) {
      return Behaviors.same();
    }
    return whileEnding(msg);
  }

  private Behavior<Command> afterJobGone(JobId job) {
    jobs.remove(job);
    if (!jobs.isEmpty()) {
      return Behaviors.same();
    }
    removeTestbed();
    return removing;
  }

  /** Every job has released its mounts: the testbed is going, and the CleanupActor says when. */
  private Behavior<Command> whileRemoving(Command msg) {
    if (msg instanceof RootfsRemoved) {
      return ending == State.CLOSING ? closed(Optional.empty()) : provisionAgain();
    } else if (msg instanceof RemovalFailed failed) {
      return ending == State.CLOSING
          ? closed(Optional.of(failed.reason()))
          : revertFailed(failed.reason());
    } else if (msg instanceof GetStatus status) {
      return replyStatus(status, ending);
    } else if (msg instanceof InterruptJobs interrupt) {
      return replyNothingToInterrupt(interrupt.replyTo());
    } else if (msg instanceof KillJobs kill) {
      return replyNothingToInterrupt(kill.replyTo());
    } else if (msg instanceof InterruptJob || msg instanceof JobStopped) {
      // A job that released its mounts may stop only now; it was let go already.
      return Behaviors.same();
    }
    return whileEnding(msg);
  }

  /**
   * Requests that come while the testbed goes: a close waits for the same end; while closing, a
   * revert fails and a command is refused; while reverting, they wait for the fresh testbed.
   */
  private Behavior<Command> whileEnding(Command msg) {
    if (ending == State.REVERTING) {
      stash.stash(msg);
    } else if (msg instanceof Close close) {
      closeRequests.add(close.replyTo());
    } else if (msg instanceof Revert revert) {
      revert.replyTo().tell(new RevertFailed("the testbed is closing"));
    } else if (msg instanceof RunJob run) {
      reject(run);
    } else {
      return Behaviors.unhandled();
    }
    return Behaviors.same();
  }

  private Behavior<Command> closed(Optional<String> error) {
    CloseReply reply = error.isEmpty() ? new Closed(id) : new CloseFailed(id, error.get());
    for (ActorRef<CloseReply> requester : closeRequests) {
      requester.tell(reply);
    }
    context.getLog().debug("session {} closed", id);
    return Behaviors.stopped();
  }

  private Behavior<Command> revertFailed(String reason) {
    revertRequest.tell(new RevertFailed(reason));
    return stopAfterFailure("the testbed could not be reverted: " + reason);
  }

  /** Asks for a testbed, which comes back as Provisioned or ProvisionFailed. */
  private void provision(Optional<Testbed> previous) {
    context.pipeToSelf(
        ports.provisioner().provision(id, spec, previous),
        (fresh, failure) -> fresh != null ? new Provisioned(fresh) : new ProvisionFailed(failure));
  }

  /** A fresh testbed with the same rootfs and scratch paths as the one just removed. */
  private Behavior<Command> provisionAgain() {
    provision(Optional.of(testbed));
    return Behaviors.receive(Command.class)
        .onMessage(
            Provisioned.class,
            msg -> {
              testbed = msg.testbed();
              interrupted = false;
              revertRequest.tell(new Reverted(testbed));
              return stash.unstashAll(open());
            })
        .onMessage(ProvisionFailed.class, msg -> revertFailed(OneLineMessage.of(msg.cause())))
        .onMessage(GetStatus.class, msg -> replyStatus(msg, State.REVERTING))
        .onAnyMessage(
            msg -> {
              stash.stash(msg);
              return Behaviors.same();
            })
        .build();
  }

  private void removeTestbed() {
    cleanup.tell(new CleanupActor.RemoveTestbed(testbed, context.getSelf()));
  }

  private Behavior<Command> replyNothingToInterrupt(ActorRef<JobsInterrupted> replyTo) {
    replyTo.tell(new JobsInterrupted(0));
    return Behaviors.same();
  }

  /**
   * Stops the session after a failure, first answering every request it had put aside, so that no
   * client waits forever for a session that is gone.
   */
  private Behavior<Command> stopAfterFailure(String reason) {
    stash.forEach(
        msg -> {
          if (msg instanceof RunJob run) {
            run.replyTo().tell(new JobActor.JobRejected(reason));
          } else if (msg instanceof Close close) {
            close.replyTo().tell(new CloseFailed(id, reason));
          } else if (msg instanceof Revert revert) {
            revert.replyTo().tell(new RevertFailed(reason));
          } else if (msg instanceof InterruptJobs interrupt) {
            interrupt.replyTo().tell(new JobsInterrupted(0));
          } else if (msg instanceof KillJobs kill) {
            kill.replyTo().tell(new JobsInterrupted(0));
          } else if (msg instanceof GetStatus status) {
            status.replyTo().tell(new Status(id, State.CLOSING, 0, interrupts));
          }
        });
    stash.clear();
    return Behaviors.stopped();
  }

  private Behavior<Command> reject(RunJob msg) {
    msg.replyTo().tell(new JobActor.JobRejected("the testbed of session " + id + " is going away"));
    return Behaviors.same();
  }
}
