package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.fail;

import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Supplier;

/**
 * Waits for something the test can observe (a file, a line of output, a process gone), checking it
 * often until a deadline. The deadline only bounds a hang; it never orders events.
 */
final class Await {

  private static final long POLL_MILLIS = 10;

  private Await() {}

  /** Returns how long it took; fails with {@code what} and {@code context} at the deadline. */
  static Duration until(
      String what, Duration limit, BooleanSupplier condition, Supplier<String> context) {
    long start = System.nanoTime();
    long deadline = start + limit.toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        fail("waited " + limit + " for " + what + "\n" + context.get());
      }
      try {
        Thread.sleep(POLL_MILLIS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        fail("interrupted while waiting for " + what);
      }
    }
    return Duration.ofNanos(System.nanoTime() - start);
  }

  static Duration until(String what, Duration limit, BooleanSupplier condition) {
    return until(what, limit, condition, () -> "");
  }
}
