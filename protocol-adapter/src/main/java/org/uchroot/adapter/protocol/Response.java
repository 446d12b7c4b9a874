package org.uchroot.adapter.protocol;

import java.util.List;
import java.util.stream.Collectors;

/**
 * An answer line. {@code ok} followed by words, or a single failure keyword such as {@code
 * copy-failed} or {@code timeout}. Words go out as given: values that may hold any character go
 * through {@link #quoted} first, because callers URL-unquote every word of an answer.
 */
public record Response(String line) {

  public static Response ok(String... words) {
    return ok(List.of(words));
  }

  public static Response ok(List<String> words) {
    return new Response(words.isEmpty() ? "ok" : "ok " + String.join(" ", words));
  }

  /** An answer other than {@code ok}; the reference keeps serving after it. */
  public static Response failed(String keyword) {
    return new Response(keyword);
  }

  /** {@code key=VALUE} with the value URL-quoted. */
  public static String keyValue(String key, String value) {
    return key + "=" + UrlQuoting.quote(value);
  }

  public static String quoted(String value) {
    return UrlQuoting.quote(value);
  }

  /** {@code print-execute-command}'s answer word: each part quoted, joined by commas. */
  public static String commaList(List<String> parts) {
    return parts.stream().map(UrlQuoting::quote).collect(Collectors.joining(","));
  }
}
