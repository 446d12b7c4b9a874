package org.uchroot.engine;

import akka.dispatch.DispatcherPrerequisites;
import akka.dispatch.ExecutorServiceConfigurator;
import akka.dispatch.ExecutorServiceFactory;
import com.typesafe.config.Config;
import java.time.Duration;
import java.util.concurrent.SynchronousQueue;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;

/**
 * The executor of the dispatchers for blocking work ({@code executor =
 * "org.uchroot.engine.ReusingThreadPool"} in {@code conf/uchroot.conf}): an idle thread takes the
 * next task, and a new one is made only when none is idle. Akka's thread-pool-executor makes a new
 * thread for every task until it reaches its core size, so each command and each close would pay
 * for starting threads. Threads idle for {@code reusing-thread-pool.keep-alive-time} end.
 */
public final class ReusingThreadPool extends ExecutorServiceConfigurator {

  private final Duration keepAlive;

  public ReusingThreadPool(Config config, DispatcherPrerequisites prerequisites) {
    super(config, prerequisites);
    this.keepAlive = config.getDuration("reusing-thread-pool.keep-alive-time");
  }

  @Override
  public ExecutorServiceFactory createExecutorServiceFactory(String id, ThreadFactory threads) {
    // Unbounded, as blocking work must be: a task queued behind a command that waits for its
    // stdin could wait for ever.
    return () ->
        new ThreadPoolExecutor(
            0,
            Integer.MAX_VALUE,
            keepAlive.toNanos(),
            TimeUnit.NANOSECONDS,
            new SynchronousQueue<>(),
            threads);
  }
}
