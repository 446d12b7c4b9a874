package org.uchroot.actors;

import java.time.Duration;
import java.util.Objects;

/**
 * How long an interrupted job gets: SIGINT first, SIGTERM after {@code beforeTerm}, and a kill of
 * its whole process tree after a further {@code beforeKill}.
 */
public record GracePeriods(Duration beforeTerm, Duration beforeKill) {
  public GracePeriods {
    Objects.requireNonNull(beforeTerm, "beforeTerm");
    Objects.requireNonNull(beforeKill, "beforeKill");
    if (beforeTerm.isNegative() || beforeKill.isNegative()) {
      throw new IllegalArgumentException("grace periods must not be negative");
    }
  }
}
