package org.uchroot.adapter.virt;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * What a caller's signals act on: the commands of its testbed for SIGINT, the testbed itself for
 * SIGTERM and SIGHUP. Each of the first two returns its line for stderr.
 */
public interface SignalTarget {

  /** Interrupts the running commands; the testbed stays open. */
  String interruptCommands();

  /** Kills the running commands at once; the testbed stays open. */
  String killCommands();

  /** Closes the testbed, for a caller that is to die of its signal; blocks until it is removed. */
  void terminate();

  /** How long a signal's line waits for the session to say how many commands it reached. */
  Duration COUNT_TIMEOUT = Duration.ofSeconds(5);

  /** How many commands a signal reached, for its line, as the session answers in time. */
  static String count(CompletableFuture<Integer> jobs) {
    try {
      return Integer.toString(jobs.get(COUNT_TIMEOUT.toMillis(), TimeUnit.MILLISECONDS));
    } catch (Exception e) {
      return "the";
    }
  }
}
