package org.uchroot.adapter.protocol;

import java.util.Arrays;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.function.Function;
import java.util.stream.Collectors;

/**
 * The commands of the virtualisation protocol with the number of arguments each takes, as the
 * reference server's {@code cmd_*} functions declare them, plus the uchroot extensions.
 */
public enum Verb {
  CAPABILITIES(0, 0),
  OPEN(0, 0),
  CLOSE(0, 0),
  REVERT(0, 0),
  REBOOT(0, 1),
  PRINT_EXECUTE_COMMAND(0, 0),
  COPYDOWN(2, 0),
  COPYUP(2, 0),
  SHELL(1, Verb.UNLIMITED),
  AUXVERB_DEBUG_FAIL(0, 0),
  QUIT(0, 0),
  /** Extension, capability {@code uchroot-status}. */
  STATUS(0, 0),
  /** Extension, capability {@code uchroot-interrupt}. */
  INTERRUPT(0, 0);

  static final int UNLIMITED = -1;

  private static final Map<String, Verb> BY_LOOKUP_NAME =
      Arrays.stream(values()).collect(Collectors.toMap(Verb::lookupName, Function.identity()));

  private final int required;
  private final int optional;

  Verb(int required, int optional) {
    this.required = required;
    this.optional = optional;
  }

  /**
   * The verb a command word names once {@code -} are read as {@code _}, as the reference looks up
   * {@code cmd_<word>}: case matters, and {@code print_execute-command} is fine.
   */
  public static Optional<Verb> lookup(String word) {
    return Optional.ofNullable(BY_LOOKUP_NAME.get(word.replace('-', '_')));
  }

  /** The spelling used in the reference's messages, such as {@code print-execute-command}. */
  public String protocolName() {
    return lookupName().replace('_', '-');
  }

  int required() {
    return required;
  }

  /** How many optional arguments may follow, or {@link #UNLIMITED}. */
  int optional() {
    return optional;
  }

  private String lookupName() {
    return name().toLowerCase(Locale.ROOT);
  }
}
