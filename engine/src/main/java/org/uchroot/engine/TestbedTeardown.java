package org.uchroot.engine;

import akka.actor.Cancellable;
import akka.actor.typed.Scheduler;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executor;
import org.uchroot.actors.Testbed;
import org.uchroot.actors.TestbedRemover;
import scala.concurrent.ExecutionContext;

/**
 * The one place that takes a testbed down: asks its job server to remove the testbed and end,
 * deletes what the job server left once the namespaces are gone, and forgets the testbed's record.
 * Its stage completes when the testbed's files and record are gone, so a revert's new testbed, or
 * another session's at the same unpack directory, never meets the old one's. Where the job server
 * removed the testbed itself, its namespaces then have nothing left to hold and take a millisecond
 * or two more to end, after the answer: {@link #awaitEnds} waits for them.
 */
final class TestbedTeardown implements TestbedRemover {

  /**
   * How long a job server may take to remove its testbed and end before it is killed; after as long
   * again the helper holding the namespaces is killed too, whose end closes every pipe this waits
   * on even when the job server cannot die (a process of the session stuck in the kernel).
   */
  private static final Duration END_WAIT = Duration.ofSeconds(10);

  private final SafeRemover remover;
  private final SessionRegistry registry;
  private final Executor blocking;

  /** The actor system's timers, which run their tasks on {@link #timers}: the blocking threads. */
  private final Scheduler scheduler;

  private final ExecutionContext timers;

  /** Namespaces still ending after their testbed's answer. */
  private final Set<NamespaceSandbox> ending = ConcurrentHashMap.newKeySet();

  TestbedTeardown(
      SafeRemover remover, SessionRegistry registry, Executor blocking, Scheduler scheduler) {
    this.remover = remover;
    this.registry = registry;
    this.blocking = blocking;
    this.scheduler = scheduler;
    this.timers = ExecutionContext.fromExecutor(blocking);
  }

  @Override
  public CompletionStage<Void> remove(Testbed testbed) {
    CompletableFuture<Void> gone = new CompletableFuture<>();
    blocking.execute(() -> takeDown(testbed, gone));
    return gone;
  }

  /** Blocks until the namespaces of every testbed taken down so far have ended. */
  void awaitEnds() {
    for (NamespaceSandbox sandbox : ending) {
      sandbox.awaitEnd();
    }
  }

  /**
   * Removes what an open that failed made before its namespaces existed, and its record. Blocks.
   */
  void removeUnstarted(Path top) {
    remover.removeNow(top);
    registry.forget(top);
  }

  /**
   * The job server deletes the testbed on its way out, from inside the session, where every file is
   * the engine user's to delete and no mount can be crossed. What it could not delete (it was
   * killed, or the tree was too large for the wait) is the {@link SafeRemover}'s, once the
   * namespaces, and so every mount of the session, are gone.
   */
  private void takeDown(Testbed testbed, CompletableFuture<Void> gone) {
    NamespaceSandbox sandbox;
    try {
      sandbox = NamespaceSandbox.of(testbed);
    } catch (RuntimeException e) {
      gone.completeExceptionally(e);
      return;
    }
    Path rootfs = testbed.rootfs();
    ending.add(sandbox);
    Cancellable overdue = scheduler.scheduleOnce(END_WAIT, sandbox.stopper(), timers);
    Cancellable longOverdue =
        scheduler.scheduleOnce(END_WAIT.multipliedBy(2), sandbox.stopper(), timers);
    try {
      sandbox.end();
      if (sandbox.awaitRemoval()) {
        registry.forget(rootfs);
        gone.complete(null);
        sandbox.awaitEnd();
      } else {
        sandbox.awaitEnd();
        remover.removeNow(rootfs);
        registry.forget(rootfs);
        gone.complete(null);
      }
    } catch (RuntimeException e) {
      gone.completeExceptionally(e);
    } finally {
      overdue.cancel();
      longOverdue.cancel();
      ending.remove(sandbox);
    }
  }
}
