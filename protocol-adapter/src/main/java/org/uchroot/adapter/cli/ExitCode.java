package org.uchroot.adapter.cli;

/** The statuses the command lines exit with on their own account. */
public enum ExitCode {
  /** A bad option value, as the reference's {@code sys.exit(1)} for a bad {@code --bind}. */
  INVALID_ARGUMENT(1),
  /** Options that do not parse, as argparse and picocli report them. */
  USAGE(2),
  /** {@code uchroot run}: no testbed could be made, so the command never ran. */
  TESTBED_FAILED(125);

  private final int code;

  ExitCode(int code) {
    this.code = code;
  }

  public int code() {
    return code;
  }
}
