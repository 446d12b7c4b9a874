package org.uchroot.adapter.cli;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Rewrites a command line written for Python's argparse, as the reference parses its own, into the
 * form picocli reads with a space as separator: {@code --opt=value} and {@code -o=value} become two
 * words, and a long option abbreviated to a prefix that only one of the reference's own options has
 * becomes that option ({@code --r} is {@code --release}). Options that are ours alone match only
 * when written in full, so that an abbreviation means the same to us as to the reference. Option
 * values, and everything from the first positional word or {@code --} on, are passed on as they
 * are.
 */
final class ArgparseArgs {

  /** The long options of autopkgtest-virt-unshare 5.28. */
  static final Set<String> REFERENCE_LONG_OPTIONS =
      Set.of(
          "--arch",
          "--bind",
          "--debug",
          "--prefix",
          "--release",
          "--tarball",
          "--unpack-dir",
          "--help");

  private ArgparseArgs() {}

  static String[] normalise(CommandLine command, String... args) {
    CommandSpec spec = command.getCommandSpec();
    List<String> out = new ArrayList<>();
    for (int i = 0; i < args.length; i++) {
      String arg = args[i];
      if (arg.equals("--") || !arg.startsWith("-") || arg.equals("-")) {
        out.addAll(Arrays.asList(args).subList(i, args.length));
        break;
      }
      String name = arg;
      String value = null;
      if (arg.startsWith("--")) {
        int equals = arg.indexOf('=');
        if (equals > 0) {
          name = arg.substring(0, equals);
          value = arg.substring(equals + 1);
        }
        name = unabbreviated(command, name);
      } else if (arg.length() > 2
          && arg.charAt(2) == '='
          && spec.findOption(arg.substring(0, 2)) != null) {
        name = arg.substring(0, 2);
        value = arg.substring(3);
      }
      OptionSpec option = spec.findOption(name);
      if (option == null) {
        // Clustered short options, or an unknown option that picocli reports.
        out.add(arg);
        continue;
      }
      out.add(name);
      int values = option.typeInfo().isBoolean() ? 0 : option.arity().max();
      if (value != null) {
        out.add(value);
        values--;
      }
      for (; values > 0 && i + 1 < args.length; values--) {
        out.add(args[++i]);
      }
    }
    return out.toArray(new String[0]);
  }

  /** The long option {@code name} stands for: itself, or the one reference option it begins. */
  private static String unabbreviated(CommandLine command, String name) {
    CommandSpec spec = command.getCommandSpec();
    if (spec.findOption(name) != null) {
      return name;
    }
    List<String> matches = new ArrayList<>();
    for (String option : REFERENCE_LONG_OPTIONS) {
      if (option.startsWith(name) && spec.findOption(option) != null) {
        matches.add(option);
      }
    }
    matches.sort(null);
    if (matches.size() > 1) {
      throw new CommandLine.ParameterException(
          command, "ambiguous option: " + name + " could match " + String.join(", ", matches));
    }
    return matches.isEmpty() ? name : matches.get(0);
  }
}
