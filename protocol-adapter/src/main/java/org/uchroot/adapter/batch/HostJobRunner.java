package org.uchroot.adapter.batch;

import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.atomic.AtomicBoolean;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.actors.SessionSpec;
import org.uchroot.adapter.virt.AptProxy;
import org.uchroot.engine.Engine;
import org.uchroot.engine.Host;
import org.uchroot.engine.Session;

/**
 * Runs a batch's jobs on this host: shell jobs in testbeds of the batch's engine, autopkgtest and
 * sbuild as they are, each in a session of its own (a terminal's signals never reach them), their
 * testbeds served by the same engine through {@code autopkgtest-virt-uchroot}, which finds it by
 * the environment given here.
 */
public final class HostJobRunner implements JobRunner {

  private static final int SIGTERM = 15;
  private static final int SIGKILL = 9;

  private final Engine engine;
  private final Path frontend;
  private final Map<String, String> runnerEnvironment;
  private final String normalUser;
  private final Optional<AptProxy> aptProxy;

  /**
   * @param frontend the absolute path of {@code autopkgtest-virt-uchroot}, given to the runners
   * @param runnerEnvironment added to the runners' environment: what points the frontend at this
   *     batch's engine
   * @param aptProxy the cache every testbed's apt goes through, if any
   */
  public HostJobRunner(
      Engine engine,
      Path frontend,
      Map<String, String> runnerEnvironment,
      String normalUser,
      Optional<AptProxy> aptProxy) {
    this.engine = engine;
    this.frontend = frontend;
    this.runnerEnvironment = Map.copyOf(runnerEnvironment);
    this.normalUser = normalUser;
    this.aptProxy = aptProxy;
  }

  @Override
  public RunningJob start(PlanJob job, Path dir) {
    if (job instanceof PlanJob.Shell shell) {
      return shell(shell, dir);
    }
    String missing = missingInput(job);
    if (missing != null) {
      return new Finished(Attempt.error(missing));
    }
    List<String> argv = new ArrayList<>(List.of("setsid"));
    if (job instanceof PlanJob.Autopkgtest autopkgtest) {
      argv.add("autopkgtest");
      argv.addAll(autopkgtest.options());
      argv.add("--summary-file=" + dir.resolve("summary"));
      argv.add("--output-dir=" + dir.resolve("artifacts"));
      argv.add(autopkgtest.source());
      argv.addAll(List.of("--", frontend.toString(), "-t", job.tarball().toString()));
      aptProxy.ifPresent(proxy -> argv.add("--apt-proxy=" + proxy.url()));
    } else {
      PlanJob.Sbuild sbuild = (PlanJob.Sbuild) job;
      argv.addAll(
          List.of(
              "sbuild",
              "--chroot-mode=autopkgtest",
              "--autopkgtest-virt-server=" + frontend,
              "--autopkgtest-virt-server-opt=-t",
              "--autopkgtest-virt-server-opt=" + job.tarball(),
              "--dist=" + sbuild.dist(),
              "--nolog",
              "--build-dir=" + dir.resolve("artifacts")));
      aptProxy.ifPresent(
          proxy -> argv.add("--autopkgtest-virt-server-opt=--apt-proxy=" + proxy.url()));
      argv.addAll(sbuild.options());
      argv.add(sbuild.source());
    }
    try {
      Files.createDirectories(dir.resolve("artifacts"));
      if (job instanceof PlanJob.Autopkgtest) {
        // autopkgtest makes its output directory itself, and wants none there.
        Files.delete(dir.resolve("artifacts"));
      }
    } catch (IOException e) {
      return new Finished(Attempt.error("cannot prepare " + dir + ": " + e.getMessage()));
    }
    // Through a pipe, not straight into the file: autopkgtest reopens /dev/stderr with O_TRUNC.
    ProcessBuilder builder =
        new ProcessBuilder(argv)
            .directory(dir.toFile())
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
            .redirectErrorStream(true);
    builder.environment().putAll(runnerEnvironment);
    Process process;
    try {
      process = builder.start();
    } catch (IOException e) {
      return new Finished(Attempt.error("cannot run " + argv.get(1) + ": " + e.getMessage()));
    }
    CompletableFuture<Void> logged = new CompletableFuture<>();
    Thread copying =
        new Thread(
            () -> {
              try (InputStream output = process.getInputStream();
                  OutputStream log =
                      Files.newOutputStream(
                          dir.resolve("log"),
                          StandardOpenOption.CREATE,
                          StandardOpenOption.APPEND)) {
                output.transferTo(log);
              } catch (IOException e) {
                // What was copied stays; the runner's status still counts.
              } finally {
                logged.complete(null);
              }
            },
            "uchroot-batch-log-" + job.id());
    copying.start();
    CompletableFuture<Attempt> ended =
        process
            .onExit()
            .thenCombine(logged, (exited, done) -> outcome(job, dir, exited.exitValue()));
    return new RunningJob() {
      @Override
      public CompletionStage<Attempt> ended() {
        return ended;
      }

      @Override
      public void interrupt() {
        // autopkgtest and sbuild clean up on SIGTERM: their testbeds close as they ask.
        Host.kill(process.pid(), SIGTERM);
      }

      @Override
      public void kill() {
        // The runner's whole session (setsid made it the group's leader); its frontends then
        // see their input end, and their testbeds close.
        Host.kill(-process.pid(), SIGKILL);
      }
    };
  }

  @Override
  public void interruptCommands() {
    engine.interruptAll();
  }

  /** A local .dsc, .changes or source tree that is not there: the job cannot start. */
  private static String missingInput(PlanJob job) {
    Optional<Path> source = job.localSource();
    if (source.isPresent() && !Files.exists(source.get())) {
      return source.get() + ": no such file";
    }
    if (!Files.isRegularFile(job.tarball())) {
      return job.tarball() + ": no such tarball";
    }
    return null;
  }

  private static Attempt outcome(PlanJob job, Path dir, int exitCode) {
    if (job instanceof PlanJob.Autopkgtest) {
      List<JobResult.TestVerdict> tests = List.of();
      Path summary = dir.resolve("summary");
      try {
        if (Files.isRegularFile(summary)) {
          tests = JobResult.TestVerdict.ofSummary(Files.readString(summary));
        }
      } catch (IOException e) {
        // The exit status still says how it went.
      }
      return new Attempt(JobStatus.ofAutopkgtest(exitCode), OptionalInt.of(exitCode), tests, "");
    }
    String status = sbuildStatus(dir.resolve("log"));
    return new Attempt(
        status.isEmpty() ? JobStatus.tmpfail : JobStatus.ofSbuild(status),
        OptionalInt.of(exitCode),
        List.of(),
        status.isEmpty() ? "sbuild ended without a status (see its log)" : "");
  }

  /** The {@code Status:} sbuild's summary ends with, or empty. */
  static String sbuildStatus(Path log) {
    try {
      String status = "";
      for (String line : Files.readAllLines(log, StandardCharsets.UTF_8)) {
        if (line.startsWith("Status: ")) {
          status = line.substring("Status: ".length()).strip();
        }
      }
      return status;
    } catch (IOException e) {
      return "";
    }
  }

  private RunningJob shell(PlanJob.Shell job, Path dir) {
    OutputStream log;
    try {
      log = new LogStream(Files.newOutputStream(dir.resolve("log")));
    } catch (IOException e) {
      return new Finished(
          Attempt.error("cannot write " + dir.resolve("log") + ": " + e.getMessage()));
    }
    SessionSpec spec =
        new SessionSpec(job.tarball(), List.of(), Optional.empty(), Optional.empty(), normalUser);
    AtomicBoolean stopped = new AtomicBoolean();
    CompletableFuture<Session> opened = engine.open(spec).toCompletableFuture();
    CompletableFuture<Attempt> ended =
        opened
            .handle(
                (session, openFailure) -> {
                  if (openFailure != null) {
                    return CompletableFuture.completedFuture(
                        Attempt.error("cannot open a testbed: " + OneLineMessage.of(openFailure)));
                  }
                  if (stopped.get()) {
                    return closing(
                        session,
                        new Attempt(
                            JobStatus.interrupted,
                            OptionalInt.empty(),
                            List.of(),
                            "interrupted before its command started"));
                  }
                  CompletionStage<ExitStatus> running =
                      aptProxy
                          .map(proxy -> proxy.configure(session))
                          .orElse(CompletableFuture.completedFuture(null))
                          .thenCompose(
                              configured -> {
                                CompletionStage<ExitStatus> command =
                                    session.run(
                                        List.of("sh", "-c", job.command()),
                                        JobStdio.of(InputStream.nullInputStream(), log, log));
                                // An interrupt that came as the command started: the session
                                // takes it after.
                                if (stopped.get()) {
                                  session.interrupt();
                                }
                                return command;
                              });
                  return running
                      .handle(
                          (ExitStatus status, Throwable failure) ->
                              failure != null
                                  ? new Attempt(
                                      JobStatus.tmpfail,
                                      OptionalInt.empty(),
                                      List.of(),
                                      OneLineMessage.of(failure))
                                  : new Attempt(
                                      JobStatus.ofShell(status.shellStatus()),
                                      OptionalInt.of(status.shellStatus()),
                                      List.of(),
                                      ""))
                      .thenCompose(attempt -> closing(session, attempt));
                })
            .thenCompose(attempt -> attempt)
            .whenComplete((attempt, failure) -> closeQuietly(log));
    return new RunningJob() {
      @Override
      public CompletionStage<Attempt> ended() {
        return ended;
      }

      @Override
      public void interrupt() {
        stopped.set(true);
        opened.thenAccept(Session::interrupt);
      }

      @Override
      public void kill() {
        stopped.set(true);
        opened.thenAccept(Session::kill);
      }
    };
  }

  /** {@code attempt}, once the session's testbed is removed; a removal that failed says so. */
  private static CompletionStage<Attempt> closing(Session session, Attempt attempt) {
    return session
        .close()
        .handle(
            (closed, failure) ->
                failure == null
                    ? attempt
                    : new Attempt(
                        attempt.status(),
                        attempt.exitCode(),
                        List.of(),
                        "testbed not removed: " + OneLineMessage.of(failure)));
  }

  private static void closeQuietly(OutputStream out) {
    try {
      out.close();
    } catch (IOException e) {
      // What was written stays.
    }
  }

  /** A job's log: its command's stdout and stderr write to it from two threads. */
  private static final class LogStream extends OutputStream {
    private final OutputStream file;

    LogStream(OutputStream file) {
      this.file = file;
    }

    @Override
    public synchronized void write(int b) throws IOException {
      file.write(b);
    }

    @Override
    public synchronized void write(byte[] b, int off, int len) throws IOException {
      file.write(b, off, len);
    }

    @Override
    public synchronized void close() throws IOException {
      file.close();
    }
  }

  /** An attempt that ended before it started. */
  private record Finished(Attempt attempt) implements RunningJob {
    @Override
    public CompletionStage<Attempt> ended() {
      return CompletableFuture.completedFuture(attempt);
    }

    @Override
    public void interrupt() {}

    @Override
    public void kill() {}
  }
}
