package org.uchroot.actors;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.AbstractBehavior;
import akka.actor.typed.javadsl.ActorContext;
import akka.actor.typed.javadsl.Behaviors;
import akka.actor.typed.javadsl.Receive;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * Hosts any number of sessions in one actor system. Turns a user's interrupt into {@link
 * SessionActor.InterruptJobs} for every session (never a teardown), and a shutdown into a close of
 * every session, answering only once all of them have ended.
 */
public final class SessionManager extends AbstractBehavior<SessionManager.Command> {

  public sealed interface Command {}

  public record OpenSession(SessionSpec spec, ActorRef<SessionActor.OpenReply> replyTo)
      implements Command {}

  /** Interrupt the running commands of every session; the sessions stay open. */
  public record InterruptAll() implements Command {}

  /** Kill the running commands of every session at once; the sessions stay open. */
  public record KillAll() implements Command {}

  /** Close every session and refuse new ones; {@code replyTo} hears once all have ended. */
  public record CloseAll(ActorRef<AllClosed> replyTo) implements Command {}

  private record SessionEnded(SessionId session) implements Command {}

  private record CloseAnswered(SessionActor.CloseReply reply) implements Command {}

  /** Every session has ended; {@code failed} of them could not remove their rootfs. */
  public record AllClosed(int sessions, int failed) {}

  public static Behavior<Command> create(SessionActor.Ports ports, Supplier<SessionId> sessionIds) {
    return Behaviors.setup(context -> new SessionManager(context, ports, sessionIds));
  }

  private final SessionActor.Ports ports;
  private final Supplier<SessionId> sessionIds;
  private final Map<SessionId, ActorRef<SessionActor.Command>> sessions = new LinkedHashMap<>();
  private final List<ActorRef<AllClosed>> awaitingShutdown = new ArrayList<>();
  private int closedAtShutdown;
  private int failedAtShutdown;
  private boolean shuttingDown;

  private SessionManager(
      ActorContext<Command> context, SessionActor.Ports ports, Supplier<SessionId> sessionIds) {
    super(context);
    this.ports = ports;
    this.sessionIds = sessionIds;
  }

  @Override
  public Receive<Command> createReceive() {
    return newReceiveBuilder()
        .onMessage(OpenSession.class, this::onOpen)
        .onMessage(InterruptAll.class, this::onInterruptAll)
        .onMessage(KillAll.class, this::onKillAll)
        .onMessage(CloseAll.class, this::onCloseAll)
        .onMessage(SessionEnded.class, this::onSessionEnded)
        .onMessage(CloseAnswered.class, this::onCloseAnswered)
        .build();
  }

  private Behavior<Command> onOpen(OpenSession msg) {
    SessionId id = sessionIds.get();
    if (shuttingDown) {
      msg.replyTo().tell(new SessionActor.OpenFailed(id, "the engine is shutting down"));
      return this;
    }
    if (sessions.containsKey(id)) {
      // A broken id supplier must not take the other sessions down with it.
      msg.replyTo().tell(new SessionActor.OpenFailed(id, "session id " + id + " is in use"));
      return this;
    }
    ActorRef<SessionActor.Command> session =
        getContext()
            .spawn(
                SessionActor.create(id, msg.spec(), ports, msg.replyTo()),
                URLEncoder.encode(id.value(), StandardCharsets.UTF_8));
    getContext().watchWith(session, new SessionEnded(id));
    sessions.put(id, session);
    return this;
  }

  private Behavior<Command> onInterruptAll(InterruptAll msg) {
    ActorRef<SessionActor.JobsInterrupted> ignore = getContext().getSystem().ignoreRef();
    sessions.values().forEach(session -> session.tell(new SessionActor.InterruptJobs(ignore)));
    getContext().getLog().debug("interrupting the jobs of {} session(s)", sessions.size());
    return this;
  }

  private Behavior<Command> onKillAll(KillAll msg) {
    ActorRef<SessionActor.JobsInterrupted> ignore = getContext().getSystem().ignoreRef();
    sessions.values().forEach(session -> session.tell(new SessionActor.KillJobs(ignore)));
    getContext().getLog().debug("killing the jobs of {} session(s)", sessions.size());
    return this;
  }

  private Behavior<Command> onCloseAll(CloseAll msg) {
    shuttingDown = true;
    awaitingShutdown.add(msg.replyTo());
    ActorRef<SessionActor.CloseReply> answers =
        getContext().messageAdapter(SessionActor.CloseReply.class, CloseAnswered::new);
    sessions.values().forEach(session -> session.tell(new SessionActor.Close(answers)));
    return replyIfAllEnded();
  }

  private Behavior<Command> onCloseAnswered(CloseAnswered msg) {
    if (msg.reply() instanceof SessionActor.CloseFailed failed) {
      failedAtShutdown++;
      getContext()
          .getLog()
          .error("session {} left its rootfs: {}", failed.session(), failed.reason());
    }
    return this;
  }

  private Behavior<Command> onSessionEnded(SessionEnded msg) {
    sessions.remove(msg.session());
    if (shuttingDown) {
      closedAtShutdown++;
    }
    return replyIfAllEnded();
  }

  private Behavior<Command> replyIfAllEnded() {
    if (shuttingDown && sessions.isEmpty()) {
      awaitingShutdown.forEach(ref -> ref.tell(new AllClosed(closedAtShutdown, failedAtShutdown)));
      awaitingShutdown.clear();
    }
    return this;
  }
}
