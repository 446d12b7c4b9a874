package org.uchroot.engine;

import akka.actor.typed.ActorRef;
import akka.actor.typed.RecipientRef;
import akka.actor.typed.Scheduler;
import akka.actor.typed.javadsl.AskPattern;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.function.Function;

/**
 * Akka's ask, answered on a CompletableFuture of the engine's own. The stage Akka returns is
 * Scala's, which runs every callback through the JDK's default asynchronous executor: where the
 * common pool has the parallelism of a single thread (two processors or fewer), that executor
 * starts a new thread per callback, and every open, revert and close paid for one. The answer here
 * completes on the engine's blocking threads, which are reused, and on which a caller's callback
 * may block without holding up an actor.
 *
 * <p>The request is a plain {@link Function}: Akka's function types are serializable, and the JVM's
 * class data archive keeps no class of a serializable lambda, so each one costs a class made at run
 * time the first time it runs; here one serves every ask.
 */
final class Asks {

  /**
   * Answers on the thread that replies, an actor's: only for a caller that blocks until the answer
   * comes and runs nothing on it.
   */
  static final Executor DIRECT = Runnable::run;

  private Asks() {}

  static <Req, Res> CompletableFuture<Res> ask(
      RecipientRef<Req> target,
      Function<ActorRef<Res>, Req> request,
      Duration timeout,
      Scheduler scheduler,
      Executor blocking) {
    CompletableFuture<Res> answer = new CompletableFuture<>();
    AskPattern.ask(target, request::apply, timeout, scheduler)
        .whenCompleteAsync(
            (reply, error) -> {
              if (error != null) {
                answer.completeExceptionally(error);
              } else {
                answer.complete(reply);
              }
            },
            blocking);
    return answer;
  }
}
