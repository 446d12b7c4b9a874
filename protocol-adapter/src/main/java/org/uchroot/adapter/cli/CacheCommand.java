package org.uchroot.adapter.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.uchroot.engine.RootfsCache;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code uchroot cache}: the read-only bases of overlay testbeds, one per tarball. */
@Command(
    name = "cache",
    description = "List or prune the unpacked tarballs that overlay testbeds share.",
    mixinStandardHelpOptions = true,
    subcommands = {CacheCommand.ListBases.class, CacheCommand.Prune.class})
final class CacheCommand {

  @Command(
      name = "list",
      mixinStandardHelpOptions = true,
      description = {
        "One line per base, most recently used first, tab-separated: KEY SIZE LAST-USED STATE"
            + " TARBALL.",
        "SIZE is what the base takes on disk, as du -h shows it (312M); an unprivileged user's"
            + " base may hold directories the user cannot read, which are not counted.",
        "LAST-USED is when a testbed last got the base, in UTC (2024-05-01T09:30:00Z).",
        "STATE is current, replaced (another file, or the same one changed, is at TARBALL now:"
            + " the base goes at the next open of TARBALL once no testbed uses it) or missing"
            + " (TARBALL is gone)."
      })
  static final class ListBases implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
      PrintWriter out = spec.commandLine().getOut();
      for (RootfsCache.Base base : RootfsCache.of(Main.loadConfig()).list()) {
        out.println(
            String.join(
                "\t",
                base.key(),
                humanSize(base.bytes()),
                base.lastUsed().truncatedTo(ChronoUnit.SECONDS).toString(),
                base.state().name().toLowerCase(Locale.ROOT),
                base.tarball().toString()));
      }
      out.flush();
      return 0;
    }
  }

  /** As du -h writes sizes: powers of 1024, rounded up, one decimal below 10. */
  static String humanSize(long bytes) {
    if (bytes < 1024) {
      return Long.toString(bytes);
    }
    String units = "KMGTPE";
    double value = bytes;
    int unit = -1;
    do {
      value /= 1024;
      unit++;
    } while (Math.ceil(value) >= 1024 && unit < units.length() - 1);
    if (value < 10) {
      double tenths = Math.ceil(value * 10) / 10;
      if (tenths < 10) {
        return String.format(Locale.ROOT, "%.1f%c", tenths, units.charAt(unit));
      }
    }
    return String.format(Locale.ROOT, "%d%c", (long) Math.ceil(value), units.charAt(unit));
  }

  @Command(
      name = "prune",
      mixinStandardHelpOptions = true,
      description = {
        "Remove every base that no live testbed uses, whatever its state, with its lock file,"
            + " and leftovers of interrupted unpacks. Waits for a server that is unpacking or"
            + " starting on a base.",
        "Without prune, a base goes when its tarball was replaced and no testbed uses it (at the"
            + " next open of that tarball), or when uchroot.cache-max-size is set and a new base"
            + " makes the cache exceed it (least recently used first)."
      })
  static final class Prune implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
      Logging.start(false);
      List<Path> removed = RootfsCache.of(Main.loadConfig()).prune();
      PrintWriter out = spec.commandLine().getOut();
      removed.forEach(path -> out.println("removed " + path));
      out.flush();
      return 0;
    }
  }

  private CacheCommand() {}
}
