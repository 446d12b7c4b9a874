package org.uchroot.actors;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.Behaviors;
import java.nio.file.Path;

/**
 * Has a testbed taken down once every job of its session has released its mounts: the session sends
 * it here only then, and the {@link TestbedRemover} does the work off the actors' threads. A
 * separate actor, so that the session keeps answering (status, interrupts, a second close) while
 * its testbed goes.
 */
public final class CleanupActor {

  public sealed interface Command {}

  /**
   * Answered with {@link SessionActor.RootfsRemoved} or {@link SessionActor.RemovalFailed}: the
   * CleanupActor is the session's helper and speaks its protocol, as its jobs do, so no message
   * adapter stands between them.
   */
  public record RemoveTestbed(Testbed testbed, ActorRef<SessionActor.Command> session)
      implements Command {}

  private record Finished(RemoveTestbed request, Throwable error) implements Command {}

  public static Behavior<Command> create(TestbedRemover remover) {
    return Behaviors.setup(
        context ->
            Behaviors.receive(Command.class)
                .onMessage(
                    RemoveTestbed.class,
                    msg -> {
                      context.pipeToSelf(
                          remover.remove(msg.testbed()), (ok, error) -> new Finished(msg, error));
                      return Behaviors.same();
                    })
                .onMessage(
                    Finished.class,
                    msg -> {
                      Path rootfs = msg.request().testbed().rootfs();
                      ActorRef<SessionActor.Command> session = msg.request().session();
                      if (msg.error() == null) {
                        context.getLog().debug("removed {}", rootfs);
                        session.tell(new SessionActor.RootfsRemoved(rootfs));
                      } else {
                        String reason = OneLineMessage.of(msg.error());
                        context.getLog().error("could not remove {}: {}", rootfs, reason);
                        session.tell(new SessionActor.RemovalFailed(rootfs, reason));
                      }
                      return Behaviors.same();
                    })
                .build());
  }

  private CleanupActor() {}
}
