package org.uchroot.engine;

import java.util.Map;

/**
 * A pause at a named point of the engine's work, for tests only: a test kills or signals a server
 * there instead of guessing when it gets there. Off unless the system property {@code
 * uchroot.test.hold} is {@code POINT:DIR}; at POINT the work then creates {@code DIR/POINT.reached}
 * and waits to read a line from the FIFO {@code DIR/POINT.release}. The points: {@code spawn} (in
 * each helper, before it leaves the engine's process group), {@code unpack} (in the unpack's shell,
 * before tar) and {@code remove} (in the job server, before it removes the testbed at a close or a
 * revert). The helpers pause themselves (helper.c), told through their environment.
 */
final class FaultHook {

  private static final String VARIABLE = "UCHROOT_TEST_HOLD";

  private FaultHook() {}

  /** Passes the hold, if the tests asked for one, to a helper about to start. */
  static void tell(Map<String, String> helperEnvironment) {
    String hold = System.getProperty("uchroot.test.hold", "");
    if (!hold.isEmpty()) {
      helperEnvironment.put(VARIABLE, hold);
    }
  }

  /** A line of shell that pauses at {@code point} when the helper was told to. */
  static String shellHold(String point) {
    String dir = "${" + VARIABLE + "#" + point + ":}";
    return "case \"${"
        + VARIABLE
        + "-}\" in "
        + point
        + ":*) "
        + ": > \""
        + dir
        + "/"
        + point
        + ".reached\"; "
        + "read _ < \""
        + dir
        + "/"
        + point
        + ".release\";; esac\n";
  }
}
