package org.uchroot.adapter.virt;

import java.time.Duration;
import java.util.function.Supplier;
import org.uchroot.actors.GracePeriods;

/**
 * What a Ctrl+C does, wherever it is received (the server's own SIGINT, or a frontend's): the first
 * interrupts the commands (SIGINT, then SIGTERM and a kill after the grace periods); another before
 * that escalation is over kills them at once. Each returns its line for stderr.
 */
public final class InterruptEscalation {

  private final GracePeriods grace;
  private final Supplier<String> interrupt;
  private final Supplier<String> kill;
  private boolean escalating;
  private long escalationEnds;

  /**
   * @param interrupt interrupts the commands and says what it did
   * @param kill kills the commands and says what it did
   */
  public InterruptEscalation(
      GracePeriods grace, Supplier<String> interrupt, Supplier<String> kill) {
    this.grace = grace;
    this.interrupt = interrupt;
    this.kill = kill;
  }

  /** Acts on one Ctrl+C; returns what it did and what comes next. */
  public synchronized String interrupted() {
    long now = System.nanoTime();
    if (escalating && now - escalationEnds < 0) {
      escalating = false;
      return "SIGINT again: " + kill.get();
    }
    Duration escalation = grace.beforeTerm().plus(grace.beforeKill());
    escalating = true;
    escalationEnds = now + escalation.toNanos();
    return "SIGINT: "
        + interrupt.get()
        + "; SIGTERM in "
        + spoken(grace.beforeTerm())
        + ", kill in "
        + spoken(escalation)
        + "; Ctrl+C again to kill now";
  }

  /** {@code 5s}, {@code 500ms}. */
  private static String spoken(Duration duration) {
    long millis = duration.toMillis();
    return millis % 1000 == 0 ? millis / 1000 + "s" : millis + "ms";
  }
}
