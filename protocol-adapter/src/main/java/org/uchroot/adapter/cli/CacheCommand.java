package org.uchroot.adapter.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import org.uchroot.engine.EngineConfig;
import org.uchroot.engine.RootfsCache;
import org.uchroot.engine.SessionRegistry;
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
      description = "One line per base: KEY LAST-USED TARBALL.")
  static final class ListBases implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
      PrintWriter out = spec.commandLine().getOut();
      for (RootfsCache.Base base : RootfsCache.of(Main.loadConfig()).list()) {
        out.println(base.key() + "\t" + base.lastUsed() + "\t" + base.tarball());
      }
      out.flush();
      return 0;
    }
  }

  @Command(
      name = "prune",
      mixinStandardHelpOptions = true,
      description = "Remove every base that no live testbed uses, and leftovers of interrupted unpacks.")
  static final class Prune implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
      Logging.start(false);
      EngineConfig config = Main.loadConfig();
      Set<Path> inUse =
          SessionRegistry.of(config).list().stream()
              .filter(SessionRegistry.Entry::live)
              .flatMap(entry -> entry.base().stream())
              .collect(Collectors.toSet());
      List<Path> removed = RootfsCache.of(config).prune(inUse);
      PrintWriter out = spec.commandLine().getOut();
      removed.forEach(path -> out.println("removed " + path));
      out.flush();
      return 0;
    }
  }

  private CacheCommand() {}
}
