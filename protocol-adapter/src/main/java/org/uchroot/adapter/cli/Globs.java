package org.uchroot.adapter.cli;

import java.util.regex.Pattern;

/** Shell-style patterns as Python's {@code fnmatch} reads them, for the tarball lookup. */
final class Globs {

  private Globs() {}

  /** {@code *}, {@code ?} and {@code [...]} (with {@code !} for negation); the rest is literal. */
  static Pattern toRegex(String glob) {
    StringBuilder regex = new StringBuilder();
    int i = 0;
    while (i < glob.length()) {
      char c = glob.charAt(i++);
      if (c == '*') {
        regex.append(".*");
      } else if (c == '?') {
        regex.append('.');
      } else if (c == '[') {
        int j = i;
        if (j < glob.length() && glob.charAt(j) == '!') {
          j++;
        }
        if (j < glob.length() && glob.charAt(j) == ']') {
          j++;
        }
        while (j < glob.length() && glob.charAt(j) != ']') {
          j++;
        }
        if (j >= glob.length()) {
          regex.append("\\[");
        } else {
          String set = glob.substring(i, j).replace("\\", "\\\\").replace("[", "\\[");
          i = j + 1;
          if (set.startsWith("!")) {
            set = "^" + set.substring(1);
          } else if (set.startsWith("^")) {
            set = "\\" + set;
          }
          regex.append('[').append(set).append(']');
        }
      } else {
        regex.append(Pattern.quote(String.valueOf(c)));
      }
    }
    return Pattern.compile(regex.toString(), Pattern.DOTALL);
  }
}
