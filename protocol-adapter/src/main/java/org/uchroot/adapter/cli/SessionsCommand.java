package org.uchroot.adapter.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.engine.EngineConfig;
import org.uchroot.engine.RootfsCache;
import org.uchroot.engine.SessionRegistry;
import org.uchroot.engine.UchrootException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code uchroot sessions}: the testbeds the calling user's servers have recorded, and the removal
 * of those whose server was killed before it could remove them.
 */
@Command(
    name = "sessions",
    description = "List the testbeds of this user's servers, or remove those of killed servers.",
    mixinStandardHelpOptions = true,
    subcommands = {SessionsCommand.ListSessions.class, SessionsCommand.Cleanup.class})
final class SessionsCommand {

  @Command(
      name = "list",
      mixinStandardHelpOptions = true,
      description = "One line per testbed: ID live|orphaned PID ROOTFS.")
  static final class ListSessions implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Override
    public Integer call() {
      PrintWriter out = spec.commandLine().getOut();
      for (SessionRegistry.Entry entry : SessionRegistry.of(Main.loadConfig()).list()) {
        out.println(
            entry.session()
                + "\t"
                + (entry.live() ? "live" : "orphaned")
                + "\t"
                + entry.ownerPid()
                + "\t"
                + entry.rootfs());
      }
      out.flush();
      return 0;
    }
  }

  @Command(
      name = "cleanup",
      mixinStandardHelpOptions = true,
      description =
          "Remove the testbeds of servers that no longer run (with --orphaned, also the partial"
              + " bases they were unpacking into the cache); a live one is refused.")
  static final class Cleanup implements Callable<Integer> {
    @Spec CommandSpec spec;

    @Option(names = "--orphaned", description = "Every testbed whose server no longer runs.")
    boolean orphaned;

    @Parameters(paramLabel = "ID", arity = "0..*", description = "Testbeds to remove.")
    List<String> ids = new ArrayList<>();

    @Override
    public Integer call() {
      Logging.start(false);
      EngineConfig config = Main.loadConfig();
      SessionRegistry registry = SessionRegistry.of(config);
      List<String> chosen = new ArrayList<>(ids);
      if (orphaned) {
        registry.orphaned().forEach(entry -> chosen.add(entry.session()));
      } else if (chosen.isEmpty()) {
        throw new CliException(ExitCode.USAGE, "name the testbeds to remove, or give --orphaned");
      }
      PrintWriter out = spec.commandLine().getOut();
      for (String id : chosen) {
        try {
          registry.cleanup(id);
        } catch (UchrootException e) {
          throw new CliException(ExitCode.INVALID_ARGUMENT, OneLineMessage.of(e));
        }
        out.println("removed " + id);
        out.flush();
      }
      if (orphaned) {
        // What a server killed in the middle of unpacking a base left in the cache.
        for (Path partial : RootfsCache.of(config).removeStalePartials()) {
          out.println("removed " + partial);
        }
        out.flush();
      }
      return 0;
    }
  }

  /** {@code ID (ROOTFS)} of each testbed that a killed server left behind. */
  static List<String> orphans(SessionRegistry registry) {
    List<String> orphans = new ArrayList<>();
    for (SessionRegistry.Entry entry : registry.orphaned()) {
      orphans.add(entry.session() + " (" + entry.rootfs() + ")");
    }
    return orphans;
  }
}
