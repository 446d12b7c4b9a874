package org.uchroot.actors;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.Behaviors;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;

/**
 * Takes down a testbed whose every job has released its mounts: ends its namespaces through the
 * {@link TestbedProvisioner}, and only once they are gone removes what is left of its rootfs, if
 * anything, through the {@link RootfsRemover}. The one place that orders the two, so that the
 * remover never deletes while a mount of the testbed may still exist.
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

  public static Behavior<Command> create(TestbedProvisioner provisioner, RootfsRemover remover) {
    return Behaviors.setup(
        context ->
            Behaviors.receive(Command.class)
                .onMessage(
                    RemoveTestbed.class,
                    msg -> {
                      Testbed testbed = msg.testbed();
                      // The removal starts where the dismantling ends, without a message between.
                      context.pipeToSelf(
                          provisioner
                              .dismantle(testbed)
                              .thenCompose(
                                  left ->
                                      left == Dismantled.ROOTFS_REMOVED
                                          ? CompletableFuture.<Void>completedStage(null)
                                          : remover.remove(testbed)),
                          (ok, error) -> new Finished(msg, error));
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
