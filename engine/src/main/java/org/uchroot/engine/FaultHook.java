package org.uchroot.engine;

import java.nio.file.Path;
import java.util.Optional;

/**
 * A pause at a named point of the engine's work, for tests only: a test kills or signals a server
 * there instead of guessing when it gets there. Off unless the system property {@code
 * uchroot.test.hold} is {@code POINT:DIR}; at POINT the work then creates {@code DIR/POINT.reached}
 * and waits to read from the FIFO {@code DIR/POINT.release}. The points: {@code unpack} (in the
 * unpack's shell, before tar) and {@code spawn} (in each helper, before it leaves the engine's
 * process group).
 */
final class FaultHook {

  private FaultHook() {}

  /** The directory of the pause at {@code point}, if the tests asked for one. */
  static Optional<Path> holdDir(String point) {
    String hold = System.getProperty("uchroot.test.hold", "");
    return hold.startsWith(point + ":")
        ? Optional.of(Path.of(hold.substring(point.length() + 1)))
        : Optional.empty();
  }

  /**
   * A line of shell that pauses at {@code point} when the word {@code dirWord} (the expansion of
   * what {@link #holdDir} gave, or empty) names a directory: the helper itself waits there.
   */
  static String shellHold(String point, String dirWord) {
    return "if [ -n \"" + dirWord + "\" ]; then : > \"" + dirWord + "/" + point + ".reached\"; "
        + "read _ < \"" + dirWord + "/" + point + ".release\"; fi\n";
  }
}
