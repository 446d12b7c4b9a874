package org.uchroot.adapter.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.codegen.docgen.manpage.ManPageGenerator;

/**
 * Writes the AsciiDoc source of the man pages, run by the build: {@code uchroot(1)}, one page per
 * subcommand, and {@code autopkgtest-virt-uchroot(1)}, from the very definitions that parse the
 * command lines, so that the pages cannot drift from the options.
 */
public final class ManPages {

  /**
   * An option whose two parameters share one label ({@code -b OUTSIDE INSIDE}) comes out with its
   * emphasis around a leading space, which AsciiDoc does not take as emphasis.
   */
  private static final Pattern SPACED_EMPHASIS = Pattern.compile("\\*_ ([^_\\n]+)_");

  /** The help's headings end in a colon; a man page's do not. */
  private static final Pattern HEADING_COLON = Pattern.compile("(?m)^(== .*):$");

  private ManPages() {}

  public static void main(String[] args) throws IOException {
    Path dir = Files.createDirectories(Path.of(args[0]));
    String[] version = new Main.Version().getVersion();
    write(dir, new CommandLine(new Main()).getCommandSpec(), version);
    write(
        dir,
        new CommandLine(new VirtServerCommand())
            .setCommandName("autopkgtest-virt-uchroot")
            .getCommandSpec(),
        version);
  }

  /** The page of {@code spec}, then those of its subcommands. */
  private static void write(Path dir, CommandSpec spec, String[] version) throws IOException {
    // `uchroot help CMD` is what uchroot CMD --help says: no page of its own.
    if (spec.usageMessage().hidden() || spec.userObject() instanceof CommandLine.HelpCommand) {
      return;
    }
    // One line per synopsis: the pager wraps it.
    spec.usageMessage().width(1000);
    spec.version(version);
    StringWriter page = new StringWriter();
    try (PrintWriter out = new PrintWriter(page)) {
      ManPageGenerator.writeSingleManPage(out, spec);
    }
    String text = SPACED_EMPHASIS.matcher(page.toString()).replaceAll("* _$1_");
    text = HEADING_COLON.matcher(text).replaceAll("$1");
    Files.writeString(dir.resolve(spec.qualifiedName("-") + ".adoc"), text);
    for (CommandLine sub : spec.subcommands().values()) {
      write(dir, sub.getCommandSpec(), version);
    }
  }
}
