package org.uchroot.adapter.cli;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.channels.ServerSocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.actors.SessionSpec;
import org.uchroot.adapter.batch.AptCache;
import org.uchroot.adapter.batch.Batch;
import org.uchroot.adapter.batch.HostJobRunner;
import org.uchroot.adapter.batch.JobResult;
import org.uchroot.adapter.batch.JobStatus;
import org.uchroot.adapter.batch.Journal;
import org.uchroot.adapter.batch.Plan;
import org.uchroot.adapter.batch.PlanJob;
import org.uchroot.adapter.batch.PlanReader;
import org.uchroot.adapter.batch.Progress;
import org.uchroot.adapter.batch.ReverseDepends;
import org.uchroot.adapter.service.EngineService;
import org.uchroot.adapter.virt.AptProxy;
import org.uchroot.engine.Engine;
import org.uchroot.engine.EngineConfig;
import org.uchroot.engine.SessionRegistry;
import org.uchroot.engine.UchrootException;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code uchroot batch PLAN}: a plan's autopkgtest, sbuild and shell jobs, several at a time, every
 * testbed served by one engine in this process: shell jobs run in it directly, and autopkgtest and
 * sbuild, run as they are, reach it through {@code autopkgtest-virt-uchroot}. Each job's log and
 * outcome go under the results directory, with {@code results.json} and {@code junit.xml}.
 */
@Command(
    name = "batch",
    description = {
      "Run a plan of autopkgtest, sbuild and shell jobs, each in fresh testbeds, several at a"
          + " time, and record their results.",
      "",
      "PLAN is YAML (.yaml, .yml; see docs/usage.md), or any other file of shell commands, one per"
          + " line. Each job's log, exit code, duration, autopkgtest summary and artifacts go to"
          + " DIR/ID/; DIR/results.json and DIR/junit.xml hold every job's outcome. Ctrl+C starts"
          + " no more jobs and interrupts the running ones, which clean up; a second Ctrl+C ends"
          + " them at once."
    },
    exitCodeListHeading = "%nExit status:%n",
    exitCodeList = {
      "0:Every job passed (neutral, no tests to run, counts as passed).",
      "1:A job failed, or could not start.",
      "2:The command line does not parse.",
      "4:Only tmpfails are left: the testbed or the network failed, not the package.",
      "125:A failure of uchroot's own: a plan that cannot be read, no testbed could be made.",
      "130:Interrupted."
    },
    sortOptions = false,
    separator = " ")
final class BatchCommand implements Callable<Integer> {

  @Mixin TestbedOptions options;

  @Option(
      names = {"-h", "--help"},
      usageHelp = true,
      description = "Show this help message and exit.")
  boolean help;

  @Option(
      names = {"-j", "--jobs"},
      paramLabel = "N",
      description = "Jobs run at once (default: the plan's defaults.jobs, else the processors).")
  Integer jobs;

  @Option(
      names = "--results",
      paramLabel = "DIR",
      description = "Where the results go (default: uchroot-results/PLAN-NAME).")
  Path results;

  @Option(
      names = "--resume",
      description =
          "Go on with the batch whose results are in DIR: the jobs that ended (not interrupted)"
              + " with the same inputs are not run again, and the testbeds a killed batch left are"
              + " removed.")
  boolean resume;

  @Option(
      names = "--rerun",
      split = ",",
      paramLabel = "STATUS",
      description = "Resume, and run again the jobs that ended so, such as fail,tmpfail.")
  List<JobStatus> rerun = new ArrayList<>();

  @Option(
      names = "--events",
      paramLabel = "FORMAT",
      description = "jsonl: one JSON object on stdout as each job starts and ends.")
  EventFormat events;

  enum EventFormat {
    jsonl
  }

  @Option(
      names = "--no-apt-cache",
      description =
          "Let every testbed fetch its own packages. By default the batch runs squid on loopback"
              + " as one apt cache for its testbeds, kept between batches (unless --apt-proxy"
              + " names a proxy of your own).")
  boolean noAptCache;

  @Option(
      names = "--reverse-depends",
      paramLabel = "PKG",
      description =
          "Plan autopkgtest jobs for the sources with tests whose binaries depend on PKG or whose"
              + " tests name it in Testsuite-Triggers, as apt in the tarball sees them; write the"
              + " plan (reverse-depends-PKG.yaml) and run it.")
  String reverseDepends;

  @Option(
      names = "--write-plan",
      paramLabel = "FILE",
      description = "With --reverse-depends: write the plan to FILE, to edit and run, and stop.")
  Path writePlan;

  @Parameters(
      paramLabel = "PLAN",
      arity = "0..1",
      description = "The plan: YAML, or one shell command per line.")
  Path file;

  @Override
  public Integer call() throws IOException {
    Logging.start(options.debug);
    if (jobs != null && jobs < 1) {
      throw new CliException(ExitCode.USAGE, "--jobs must be at least 1");
    }
    Map<String, String> env = System.getenv();
    Optional<AptProxy> ownProxy = options.aptProxy();
    Optional<Path> tarball = options.tarball(env);
    if (reverseDepends != null) {
      if (file != null) {
        throw new CliException(ExitCode.USAGE, "give a PLAN or --reverse-depends, not both");
      }
      file = planReverseDepends(tarball);
      if (writePlan != null) {
        return 0;
      }
    } else if (file == null) {
      throw new CliException(ExitCode.USAGE, "give a PLAN (or --reverse-depends PKG)");
    } else if (writePlan != null) {
      throw new CliException(ExitCode.USAGE, "--write-plan goes with --reverse-depends");
    }
    Plan plan;
    try {
      plan =
          PlanReader.read(
              file,
              new PlanReader.CommandLine(
                  Optional.ofNullable(jobs),
                  options.tarball != null ? tarball : Optional.empty(),
                  options.tarball == null ? tarball : Optional.empty()));
    } catch (PlanReader.PlanException e) {
      throw new CliException(ExitCode.INVALID_ARGUMENT, e.getMessage());
    }
    // Absolute: the runners run in their jobs' directories.
    Path resultsDir =
        (results != null ? results : Path.of("uchroot-results", plan.name()))
            .toAbsolutePath()
            .normalize();
    EngineConfig config = options.configure(Main.loadConfig());
    boolean resuming = resume || !rerun.isEmpty();
    Map<String, JobResult> earlier = Map.of();
    if (resuming) {
      earlier = resumed(plan, resultsDir, config);
    } else {
      prepareResults(resultsDir);
    }
    // Log lines about a runner's frontend go to that frontend, and so to the job's log.
    EngineService.routeLogs(System.err);
    Engine engine = Engine.start(config);
    boolean runners = plan.jobs().stream().anyMatch(job -> !(job instanceof PlanJob.Shell));
    Frontends frontends = runners ? Frontends.serve(engine, config) : null;
    Optional<AptCache> aptCache = ownProxy.isPresent() ? Optional.empty() : startAptCache(config);
    Runnable closeAll =
        once(
            () -> {
              if (frontends != null) {
                frontends.stop();
              } else {
                engine.close();
              }
              aptCache.ifPresent(AptCache::close);
            });
    try {
      HostJobRunner runner =
          new HostJobRunner(
              engine,
              frontendProgram(),
              frontends != null ? frontends.environment() : Map.of(),
              config.normalUser(),
              aptCache.map(AptCache::proxy).or(() -> ownProxy));
      PrintStream stdout =
          new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
      // Kept jobs of a resumed batch are not run again, and do not count.
      Progress progress =
          new Progress(
              System.err,
              events != null ? stdout : null,
              plan.jobs().size() - earlier.size(),
              Progress.stderrIsTerminal(),
              Clock.systemDefaultZone());
      Journal journal = Journal.append(resultsDir, ProcessHandle.current().pid());
      Batch batch =
          new Batch(
              runner,
              engine.materializer(),
              resultsDir,
              Batch.Listener.all(List.of(journal, progress)));
      Signals.onInterrupt(
          config.grace(),
          () -> {
            batch.interrupt();
            return "no job starts any more; the running ones are interrupted and clean up";
          },
          () -> {
            batch.kill();
            return "ending every job now";
          });
      // SIGTERM and SIGHUP: every job ends at once and every testbed is removed, then the batch
      // dies of the signal.
      Signals.onTermination(
          () -> {
            progress.close();
            batch.kill();
            closeAll.run();
          });
      List<JobResult> outcome;
      try {
        outcome = batch.run(plan, plan.parallelism(), earlier).toCompletableFuture().join();
      } finally {
        progress.close();
      }
      progress.summary(outcome);
      aptCache.ifPresent(cache -> System.err.println("apt cache: " + cache.traffic()));
      System.err.println(
          "results: "
              + resultsDir.resolve("results.json")
              + ", "
              + resultsDir.resolve("junit.xml"));
      journal.close();
      return Batch.exitStatus(outcome, batch.interrupted());
    } finally {
      closeAll.run();
    }
  }

  /**
   * Asks apt in a testbed of the tarball which sources to test for {@code --reverse-depends} and
   * writes their plan; returns its file.
   */
  private Path planReverseDepends(Optional<Path> tarball) throws IOException {
    Path from =
        tarball.orElseThrow(
            () ->
                new CliException(
                    ExitCode.INVALID_ARGUMENT,
                    TestbedOptions.missingTarballMessage(System.getenv())
                        + "; give the tarball with -t"));
    Path plan =
        writePlan != null ? writePlan : Path.of("reverse-depends-" + reverseDepends + ".yaml");
    if (writePlan == null && Files.exists(plan)) {
      throw new CliException(
          ExitCode.INVALID_ARGUMENT,
          plan + " exists: run it with `uchroot batch " + plan + "`, or remove it to plan anew");
    }
    EngineConfig config = options.configure(Main.loadConfig());
    ReverseDepends found;
    try (Engine engine = Engine.start(config)) {
      found =
          ReverseDepends.query(
              engine,
              new SessionSpec(
                  from, List.of(), Optional.empty(), Optional.empty(), config.normalUser()),
              reverseDepends,
              System.err);
    }
    if (!found.knowsChanged()) {
      throw new CliException(
          ExitCode.INVALID_ARGUMENT,
          "apt in " + from + " knows no package " + reverseDepends + ": check its name");
    }
    List<String> sources = found.sources();
    ReverseDepends.writePlan(plan, reverseDepends, from.toAbsolutePath(), sources);
    System.err.println(
        "planned " + sources.size() + " autopkgtest job(s) in " + plan + ": " + sources);
    return plan;
  }

  /**
   * The batch's apt cache: none with {@code --no-apt-cache}, nor where squid is missing or cannot
   * start, each said in one line.
   */
  private Optional<AptCache> startAptCache(EngineConfig config) {
    if (noAptCache) {
      return Optional.empty();
    }
    if (!AptCache.available()) {
      System.err.println(
          "no apt cache: squid is not installed (apt install squid, or give --apt-proxy URL);"
              + " every testbed fetches its own packages");
      return Optional.empty();
    }
    Path dir =
        config.cacheDir().resolveSibling(config.cacheDir().getFileName() + "-apt").normalize();
    try {
      AptCache cache = AptCache.start(dir);
      System.err.println(
          "apt cache: squid on " + cache.proxy().url() + ", keeping what it fetches in " + dir);
      return Optional.of(cache);
    } catch (UchrootException e) {
      System.err.println(
          "no apt cache: " + OneLineMessage.of(e) + "; every testbed fetches its own packages");
      return Optional.empty();
    }
  }

  /** {@code action} once, whoever asks first; a second caller waits until it is done. */
  private static Runnable once(Runnable action) {
    AtomicBoolean done = new AtomicBoolean();
    return () -> {
      synchronized (done) {
        if (done.compareAndSet(false, true)) {
          action.run();
        }
      }
    };
  }

  /**
   * The results a resumed batch keeps: those of the jobs its journal has an end for, but for
   * interrupted ones, those --rerun names and those whose inputs changed. The directories of the
   * others keep their earlier run aside; the testbeds an earlier run of this batch left, killed,
   * are removed.
   */
  private Map<String, JobResult> resumed(Plan plan, Path dir, EngineConfig config)
      throws IOException {
    Optional<Journal.State> read = Journal.read(dir);
    if (read.isEmpty()) {
      throw new CliException(
          ExitCode.INVALID_ARGUMENT,
          dir
              + " has no "
              + Journal.FILE
              + " to resume from: run the plan without --resume or --rerun, or give its results"
              + " directory with --results");
    }
    Journal.State state = read.get();
    SessionRegistry registry = SessionRegistry.of(config);
    for (SessionRegistry.Entry orphan : registry.orphaned()) {
      if (state.pids().contains(orphan.ownerPid())) {
        registry.cleanup(orphan.session());
        System.err.println(
            "removed testbed "
                + orphan.session()
                + " ("
                + orphan.rootfs()
                + "), left by the batch's earlier run (pid "
                + orphan.ownerPid()
                + ")");
      }
    }
    for (long pid : state.pids()) {
      if (ProcessHandle.of(pid).isEmpty()) {
        Frontends.remove(Frontends.runtimeDir(config, pid));
      }
    }
    Map<String, JobResult> kept = new LinkedHashMap<>();
    for (PlanJob job : plan.jobs()) {
      Journal.Finished finished = state.finished().get(job.id());
      if (finished != null
          && finished.result().status() != JobStatus.interrupted
          && !rerun.contains(finished.result().status())
          && finished.inputs().equals(Journal.inputs(job))) {
        kept.put(job.id(), finished.result());
      } else {
        Batch.keepEarlierRun(dir.resolve(job.id()));
      }
    }
    return kept;
  }

  /** A results directory of this batch's own: new, or empty. */
  private static void prepareResults(Path dir) throws IOException {
    if (Files.isDirectory(dir)) {
      try (Stream<Path> entries = Files.list(dir)) {
        if (entries.findAny().isPresent()) {
          throw new CliException(
              ExitCode.INVALID_ARGUMENT,
              dir
                  + " holds an earlier batch's results: remove it, or give another directory with"
                  + " --results");
        }
      }
    }
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new CliException(
          ExitCode.INVALID_ARGUMENT,
          "cannot make the results directory " + dir + ": " + UchrootException.reason(e));
    }
  }

  /** The frontend the runners are given, beside this launcher. */
  private static Path frontendProgram() {
    String home = System.getProperty("uchroot.home");
    return home != null
        ? Path.of(home, "bin", "autopkgtest-virt-uchroot")
        : Path.of("autopkgtest-virt-uchroot");
  }

  /**
   * The engine's socket for the runners' frontends: in a directory of this batch's own, so that
   * they reach this process and not the user's shared engine.
   */
  private record Frontends(EngineService service, Thread serving, Path runtimeDir) {

    static Frontends serve(Engine engine, EngineConfig config) throws IOException {
      Path runtimeDir = runtimeDir(config, ProcessHandle.current().pid());
      Files.createDirectories(
          runtimeDir,
          PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      ServerSocketChannel server = EngineService.bind(runtimeDir);
      // The batch stops it; it never idles out.
      EngineService service =
          EngineService.on(server, runtimeDir, engine, Duration.ofDays(3650), Main::runForFrontend);
      Thread serving = new Thread(service::serve, "uchroot-batch-frontends");
      serving.start();
      return new Frontends(service, serving, runtimeDir);
    }

    Map<String, String> environment() {
      return Map.of("UCHROOT_ENGINE", "shared", "UCHROOT_RUNTIME_DIR", runtimeDir.toString());
    }

    /** Stops serving, closing whatever a frontend left, then the engine; removes the directory. */
    void stop() {
      service.stop("the batch ended");
      try {
        serving.join();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      remove(runtimeDir);
    }

    /** The directory of the batch {@code pid}'s socket. */
    static Path runtimeDir(EngineConfig config, long pid) {
      return config.runtimeDir().resolve("batch-" + pid);
    }

    /**
     * Removes a batch's directory and what a frontend left there (its start lock), never following
     * a link; one a killed batch left, too.
     */
    static void remove(Path runtimeDir) {
      if (!Files.isDirectory(runtimeDir, LinkOption.NOFOLLOW_LINKS)) {
        return;
      }
      try (Stream<Path> left = Files.list(runtimeDir)) {
        for (Path entry : left.toList()) {
          Files.deleteIfExists(entry);
        }
        Files.deleteIfExists(runtimeDir);
      } catch (IOException e) {
        LoggerFactory.getLogger(BatchCommand.class)
            .warn("cannot remove {}: {}", runtimeDir, UchrootException.reason(e));
      }
    }
  }
}
