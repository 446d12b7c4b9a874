package org.uchroot.adapter.cli;

import java.util.Map;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import jnr.posix.POSIXFactory;
import jnr.posix.Passwd;

/**
 * The expansions a POSIX shell makes in a path word, and no others: a leading {@code ~} or {@code
 * ~user}, and {@code $VAR} or {@code ${VAR}} anywhere. The reference hands its tarball path to
 * {@code sh}, so users write {@code -t ~/.cache/sbuild/...} in sbuild's settings; the same holds
 * here for every path option.
 */
final class ShellExpansion {

  private static final Pattern TILDE = Pattern.compile("^~([A-Za-z0-9._-]*)(?=/|$)");
  private static final Pattern VARIABLE =
      Pattern.compile("\\$(?:([A-Za-z_][A-Za-z0-9_]*)|\\{([A-Za-z_][A-Za-z0-9_]*)})");

  private ShellExpansion() {}

  static String expand(String word, Map<String, String> env) {
    Matcher tilde = TILDE.matcher(word);
    String rest = word;
    String head = "";
    if (tilde.find()) {
      Optional<String> home = home(tilde.group(1), env);
      if (home.isPresent()) {
        head = home.get();
        rest = word.substring(tilde.end());
      }
    }
    Matcher variable = VARIABLE.matcher(rest);
    StringBuilder expanded = new StringBuilder(head);
    while (variable.find()) {
      String name = variable.group(1) != null ? variable.group(1) : variable.group(2);
      variable.appendReplacement(expanded, Matcher.quoteReplacement(env.getOrDefault(name, "")));
    }
    variable.appendTail(expanded);
    return expanded.toString();
  }

  /** {@code $HOME} for {@code ~}; a user's home from the password database; else none. */
  private static Optional<String> home(String user, Map<String, String> env) {
    if (user.isEmpty()) {
      String home = env.get("HOME");
      return Optional.of(home != null ? home : System.getProperty("user.home"));
    }
    // Loaded only here: jnr's set-up is slow, and a named user is rare.
    Passwd entry = POSIXFactory.getNativePOSIX().getpwnam(user);
    return entry == null ? Optional.empty() : Optional.of(entry.getHome());
  }
}
