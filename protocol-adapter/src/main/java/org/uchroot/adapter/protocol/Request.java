package org.uchroot.adapter.protocol;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * One command line of the protocol, decoded as the reference's {@code command()} does: surrounding
 * whitespace stripped, split on whitespace (Python's notion of it), every word URL-unquoted, the
 * verb looked up with {@code -} read as {@code _}, and the number of arguments checked.
 *
 * @param verb the command
 * @param word the command word exactly as sent, still quoted: the reference's messages quote it so
 * @param args the unquoted arguments after the command word
 */
public record Request(Verb verb, String word, List<String> args) {

  public Request {
    Objects.requireNonNull(verb, "verb");
    Objects.requireNonNull(word, "word");
    args = List.copyOf(args);
  }

  /**
   * Decodes one line (without its newline). Empty for a blank line, which the reference skips
   * without an answer.
   *
   * @throws ProtocolError for an unknown command or a wrong number of arguments
   */
  public static Optional<Request> parse(String line) throws ProtocolError {
    List<String> words = splitOnWhitespace(line);
    if (words.isEmpty()) {
      return Optional.empty();
    }
    String word = words.get(0);
    Verb verb =
        Verb.lookup(UrlQuoting.unquote(word)).orElseThrow(() -> ProtocolError.unknownCommand(word));
    List<String> args = new ArrayList<>(words.size() - 1);
    for (String raw : words.subList(1, words.size())) {
      args.add(UrlQuoting.unquote(raw));
    }
    if (args.size() < verb.required()) {
      throw ProtocolError.tooFewArguments(word);
    }
    if (verb.optional() != Verb.UNLIMITED && args.size() > verb.required() + verb.optional()) {
      throw ProtocolError.tooManyArguments(word);
    }
    return Optional.of(new Request(verb, word, args));
  }

  public String arg(int index) {
    return args.get(index);
  }

  /** Python's {@code str.split()}: runs of whitespace separate words, none are empty. */
  static List<String> splitOnWhitespace(String line) {
    List<String> words = new ArrayList<>();
    int start = -1;
    for (int i = 0; i < line.length(); i++) {
      if (isPythonWhitespace(line.charAt(i))) {
        if (start >= 0) {
          words.add(line.substring(start, i));
          start = -1;
        }
      } else if (start < 0) {
        start = i;
      }
    }
    if (start >= 0) {
      words.add(line.substring(start));
    }
    return words;
  }

  /**
   * Python's {@code str.isspace()}, which is neither {@link Character#isWhitespace} (no-break
   * spaces count in Python) nor {@link Character#isSpaceChar} (controls count).
   */
  static boolean isPythonWhitespace(char c) {
    return (c >= 0x09 && c <= 0x0d)
        || (c >= 0x1c && c <= 0x20)
        || c == 0x85
        || c == 0xa0
        || c == 0x1680
        || (c >= 0x2000 && c <= 0x200a)
        || c == 0x2028
        || c == 0x2029
        || c == 0x202f
        || c == 0x205f
        || c == 0x3000;
  }
}
