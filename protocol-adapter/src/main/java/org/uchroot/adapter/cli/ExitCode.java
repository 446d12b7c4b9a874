package org.uchroot.adapter.cli;

/** The statuses the command lines exit with on their own account. */
public enum ExitCode {
  /**
   * A bad option value of the drop-in server, as the reference's {@code sys.exit(1)} for a bad
   * {@code --bind}; {@code uchroot}'s own commands exit {@link #TESTBED_FAILED} for it.
   */
  INVALID_ARGUMENT(1),
  /** Options that do not parse, as argparse and picocli report them. */
  USAGE(2),
  /** uchroot's own failure: bad input, or no testbed could be made; the command never ran. */
  TESTBED_FAILED(125);

  private final int code;

  ExitCode(int code) {
    this.code = code;
  }

  public int code() {
    return code;
  }
}
