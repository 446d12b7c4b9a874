package org.uchroot.adapter.cli;

import java.util.Objects;

/**
 * Ends a command line with a one-line message and a named status; {@link Main} prints the message
 * and picocli exits with the status. Never shown with a stack trace.
 */
public final class CliException extends RuntimeException {

  private final ExitCode exitCode;

  public CliException(ExitCode exitCode, String message) {
    super(message, null, false, false);
    this.exitCode = Objects.requireNonNull(exitCode, "exitCode");
  }

  public ExitCode exitCode() {
    return exitCode;
  }
}
