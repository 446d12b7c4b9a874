package org.uchroot.engine;

import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;

/** A failure worth one line to the user: its message says what went wrong, without a trace. */
public class UchrootException extends RuntimeException {
  public UchrootException(String message) {
    super(message);
  }

  public UchrootException(String message, Throwable cause) {
    super(message, cause);
  }

  /** The system's words for an I/O error, without Java's exception class names. */
  public static String reason(Exception e) {
    if (e instanceof NoSuchFileException) {
      return "No such file or directory";
    }
    if (e instanceof AccessDeniedException) {
      return "Permission denied";
    }
    if (e instanceof FileSystemException fse && fse.getReason() != null) {
      return fse.getReason();
    }
    return e.getMessage() != null ? e.getMessage() : e.toString();
  }
}
