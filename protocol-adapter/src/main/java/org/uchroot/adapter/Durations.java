package org.uchroot.adapter;

import java.time.Duration;
import java.util.regex.Pattern;

/** The durations users write on command lines and in batch plans. */
public final class Durations {

  private static final Pattern SIMPLE = Pattern.compile("(\\d+(?:\\.\\d+)?)\\s*(ms|s|m|h)?");

  private Durations() {}

  /**
   * {@code 5s}, {@code 500ms}, {@code 2m}, {@code 1h}, a bare number of seconds, or ISO-8601 such
   * as {@code PT5S}.
   *
   * @throws IllegalArgumentException with the accepted forms, for anything else
   */
  public static Duration parse(String value) {
    var m = SIMPLE.matcher(value.trim());
    if (m.matches()) {
      double amount = Double.parseDouble(m.group(1));
      String unit = m.group(2) == null ? "s" : m.group(2);
      double millis =
          switch (unit) {
            case "ms" -> amount;
            case "m" -> amount * 60_000;
            case "h" -> amount * 3_600_000;
            default -> amount * 1000;
          };
      return Duration.ofMillis(Math.round(millis));
    }
    try {
      Duration duration = Duration.parse(value.trim());
      if (!duration.isNegative()) {
        return duration;
      }
    } catch (RuntimeException e) {
      // Reported below, with the accepted forms.
    }
    throw new IllegalArgumentException(
        "'" + value + "' is not a duration (for example 5s, 500ms, 2m)");
  }
}
