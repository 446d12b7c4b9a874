package org.uchroot.actors;

import akka.actor.typed.ActorRef;
import akka.actor.typed.Behavior;
import akka.actor.typed.javadsl.Behaviors;
import java.nio.file.Path;

/**
 * Removes the rootfs of a dismantled testbed through the {@link RootfsRemover} and reports the
 * outcome. A session hands its rootfs over only once every job has released its mounts and the
 * session's namespaces are gone.
 */
public final class CleanupActor {

  public sealed interface Command {}

  public record RemoveRootfs(Testbed testbed, ActorRef<Reply> replyTo) implements Command {}

  private record Finished(RemoveRootfs request, Throwable error) implements Command {}

  public sealed interface Reply {}

  public record RootfsRemoved(Path rootfs) implements Reply {}

  /** Nothing, or not everything, was deleted; {@code reason} is one line. */
  public record RemovalFailed(Path rootfs, String reason) implements Reply {}

  public static Behavior<Command> create(RootfsRemover remover) {
    return Behaviors.setup(
        context ->
            Behaviors.receive(Command.class)
                .onMessage(
                    RemoveRootfs.class,
                    msg -> {
                      context.pipeToSelf(
                          remover.remove(msg.testbed()), (ok, error) -> new Finished(msg, error));
                      return Behaviors.same();
                    })
                .onMessage(
                    Finished.class,
                    msg -> {
                      Path rootfs = msg.request().testbed().rootfs();
                      if (msg.error() == null) {
                        context.getLog().debug("removed {}", rootfs);
                        msg.request().replyTo().tell(new RootfsRemoved(rootfs));
                      } else {
                        String reason = JobActor.reason(msg.error());
                        context.getLog().error("could not remove {}: {}", rootfs, reason);
                        msg.request().replyTo().tell(new RemovalFailed(rootfs, reason));
                      }
                      return Behaviors.same();
                    })
                .build());
  }

  private CleanupActor() {}
}
