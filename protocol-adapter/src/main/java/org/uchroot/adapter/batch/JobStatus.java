package org.uchroot.adapter.batch;

import java.util.Locale;

/**
 * How a job ended, as debci and CI systems tell them apart. {@code neutral} (no tests to run)
 * counts as passed; {@code tmpfail} (the testbed or the network failed, not the package) is worth
 * another try; {@code interrupted} jobs run again on {@code --resume}; {@code error} jobs could not
 * start.
 */
public enum JobStatus {
  pass,
  neutral,
  fail,
  tmpfail,
  interrupted,
  error;

  /** debci's reading of autopkgtest's exit status. */
  public static JobStatus ofAutopkgtest(int exitStatus) {
    return switch (exitStatus) {
      case 0, 2 -> pass;
      case 4, 6, 12, 14 -> fail;
      case 8 -> neutral;
      default -> tmpfail;
    };
  }

  /**
   * sbuild's outcome, from the {@code Status:} line of its summary: successful passes, attempted
   * and failed fail, given-back (and anything else, sbuild's own troubles) is a tmpfail.
   */
  public static JobStatus ofSbuild(String status) {
    return switch (status.strip().toLowerCase(Locale.ROOT)) {
      case "successful" -> pass;
      case "attempted", "failed" -> fail;
      default -> tmpfail;
    };
  }

  /** A shell job's command: 0 passes, anything else fails. */
  public static JobStatus ofShell(int exitStatus) {
    return exitStatus == 0 ? pass : fail;
  }

  /** Whether a batch of only such jobs passed. */
  public boolean passed() {
    return this == pass || this == neutral;
  }
}
