package org.uchroot.engine;

/** A failure worth one line to the user: its message says what went wrong, without a trace. */
public class UchrootException extends RuntimeException {
  public UchrootException(String message) {
    super(message);
  }

  public UchrootException(String message, Throwable cause) {
    super(message, cause);
  }
}
