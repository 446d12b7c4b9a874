package org.uchroot.actors;

import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;

/**
 * What a failure says to a user, on one line: the protocol channel, an exec client's failure frame
 * and the command lines' errors all carry it, and a line break there would split one answer in two.
 * Never the names of the exception classes that carried it across threads.
 */
public final class OneLineMessage {

  private OneLineMessage() {}

  /** The message of {@code error}'s cause, unwrapped from the futures it came through. */
  public static String of(Throwable error) {
    Throwable cause = error;
    while ((cause instanceof CompletionException || cause instanceof ExecutionException)
        && cause.getCause() != null) {
      cause = cause.getCause();
    }
    String message = cause.getMessage();
    return message == null || message.isBlank() ? cause.getClass().getName() : of(message);
  }

  /** {@code text}, a tool's stderr say, with its lines joined by "; ". */
  public static String of(String text) {
    return String.join("; ", text.strip().split("\\s*\\n\\s*"));
  }
}
