package org.uchroot.adapter.batch;

import akka.japi.Pair;
import akka.stream.KillSwitches;
import akka.stream.Materializer;
import akka.stream.UniqueKillSwitch;
import akka.stream.javadsl.Keep;
import akka.stream.javadsl.Sink;
import akka.stream.javadsl.Source;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;

/**
 * Runs a plan's jobs as a stream: the plan is the source, at most {@code parallelism} jobs run at
 * once, each job's attempts (a tmpfail is tried again after its back-off) come back as its result,
 * and a kill switch stops the source on Ctrl+C. Each job has a directory under the results: its
 * runner's {@code log}, {@code summary} and {@code artifacts/}, and the batch's {@code exitcode}
 * and {@code duration}; earlier attempts move to {@code attempt-N/}.
 */
public final class Batch {

  /** What a batch says as it goes; called on the stream's threads, one job at a time each. */
  public interface Listener {
    default void started(PlanJob job, int attempt) {}

    default void finished(PlanJob job, JobResult result) {}

    /** Each of {@code listeners}, in turn. */
    static Listener all(List<Listener> listeners) {
      return new Listener() {
        @Override
        public void started(PlanJob job, int attempt) {
          listeners.forEach(listener -> listener.started(job, attempt));
        }

        @Override
        public void finished(PlanJob job, JobResult result) {
          listeners.forEach(listener -> listener.finished(job, result));
        }
      };
    }
  }

  private final JobRunner runner;
  private final Materializer materializer;
  private final Path resultsDir;
  private final Listener listener;

  private final Set<JobRunner.RunningJob> running = ConcurrentHashMap.newKeySet();
  private final CompletableFuture<UniqueKillSwitch> killSwitch = new CompletableFuture<>();
  private volatile boolean interrupted;

  public Batch(JobRunner runner, Materializer materializer, Path resultsDir, Listener listener) {
    this.runner = runner;
    this.materializer = materializer;
    this.resultsDir = resultsDir;
    this.listener = listener;
  }

  /**
   * Runs the plan's jobs but those with a result in {@code earlier} (a resumed batch's); completes,
   * once every job has ended and its testbed is gone, with every job's result in the plan's order,
   * and with {@code results.json} and {@code junit.xml} written. Jobs that never started because
   * the batch was interrupted are {@code interrupted}, with no attempt.
   */
  public CompletionStage<List<JobResult>> run(
      Plan plan, int parallelism, Map<String, JobResult> earlier) {
    List<PlanJob> toRun =
        plan.jobs().stream().filter(job -> !earlier.containsKey(job.id())).toList();
    Pair<UniqueKillSwitch, CompletionStage<List<JobResult>>> stream =
        Source.from(toRun)
            .viaMat(KillSwitches.single(), Keep.right())
            .mapAsyncUnordered(parallelism, this::runJob)
            .toMat(Sink.seq(), Keep.both())
            .run(materializer);
    killSwitch.complete(stream.first());
    return stream
        .second()
        .thenApply(
            done -> {
              List<JobResult> ran = new ArrayList<>(earlier.values());
              ran.addAll(done);
              List<JobResult> results = inPlanOrder(plan, ran);
              try {
                ResultFiles.write(resultsDir, plan.name(), results);
              } catch (IOException e) {
                throw new UncheckedIOException(e);
              }
              return results;
            });
  }

  /** The first Ctrl+C: no job starts any more, and the running ones are stopped with cleanup. */
  public void interrupt() {
    interrupted = true;
    killSwitch.thenAccept(UniqueKillSwitch::shutdown);
    runner.interruptCommands();
    running.forEach(JobRunner.RunningJob::interrupt);
  }

  /** A second Ctrl+C: every running job ends at once; its testbed is still removed. */
  public void kill() {
    interrupted = true;
    killSwitch.thenAccept(UniqueKillSwitch::shutdown);
    running.forEach(JobRunner.RunningJob::kill);
  }

  public boolean interrupted() {
    return interrupted;
  }

  /**
   * The batch's exit status: 130 if it was interrupted, else 1 if a job failed or could not start,
   * else 4 if tmpfails are left, else 0 (neutral counts as passed).
   */
  public static int exitStatus(List<JobResult> results, boolean interrupted) {
    if (interrupted) {
      return 130;
    }
    if (results.stream()
        .anyMatch(r -> r.status() == JobStatus.fail || r.status() == JobStatus.error)) {
      return 1;
    }
    return results.stream().allMatch(r -> r.status().passed()) ? 0 : 4;
  }

  private CompletionStage<JobResult> runJob(PlanJob job) {
    Path dir = resultsDir.resolve(job.id());
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      return CompletableFuture.completedFuture(
          finish(
              job,
              dir,
              1,
              System.nanoTime(),
              JobRunner.Attempt.error("cannot make " + dir + ": " + e.getMessage())));
    }
    return attempt(job, dir, 1, System.nanoTime());
  }

  private CompletionStage<JobResult> attempt(PlanJob job, Path dir, int number, long start) {
    if (interrupted) {
      return CompletableFuture.completedFuture(
          number == 1
              ? notStarted(job)
              : finish(job, dir, number - 1, start, stopped("the batch was interrupted")));
    }
    if (number > 1) {
      keepEarlierAttempt(dir, number - 1);
    }
    listener.started(job, number);
    JobRunner.RunningJob attempt;
    try {
      attempt = runner.start(job, dir);
    } catch (RuntimeException e) {
      return CompletableFuture.completedFuture(
          finish(job, dir, number, start, JobRunner.Attempt.error(String.valueOf(e.getMessage()))));
    }
    running.add(attempt);
    if (interrupted) {
      attempt.interrupt();
    }
    AtomicBoolean timedOut = new AtomicBoolean();
    job.timeout()
        .ifPresent(
            limit ->
                CompletableFuture.delayedExecutor(limit.toMillis(), TimeUnit.MILLISECONDS)
                    .execute(
                        () -> {
                          if (!attempt.ended().toCompletableFuture().isDone()) {
                            timedOut.set(true);
                            attempt.interrupt();
                          }
                        }));
    return attempt
        .ended()
        .exceptionally(e -> JobRunner.Attempt.error(String.valueOf(e.getMessage())))
        .thenCompose(
            ended -> {
              running.remove(attempt);
              JobRunner.Attempt outcome = ended;
              if (timedOut.get()) {
                outcome =
                    new JobRunner.Attempt(
                        JobStatus.fail,
                        ended.exitCode(),
                        ended.tests(),
                        "timed out after " + spoken(job.timeout().orElseThrow()));
              } else if (interrupted) {
                outcome =
                    new JobRunner.Attempt(
                        JobStatus.interrupted,
                        ended.exitCode(),
                        ended.tests(),
                        "the batch was interrupted");
              }
              if (outcome.status() == JobStatus.tmpfail && number <= job.retries().tmpfail()) {
                Duration backoff = job.retries().backoff();
                return CompletableFuture.supplyAsync(
                        () -> null,
                        CompletableFuture.delayedExecutor(
                            backoff.toMillis(), TimeUnit.MILLISECONDS))
                    .thenCompose(ignored -> attempt(job, dir, number + 1, start));
              }
              return CompletableFuture.completedFuture(finish(job, dir, number, start, outcome));
            });
  }

  private static JobRunner.Attempt stopped(String reason) {
    return new JobRunner.Attempt(JobStatus.interrupted, OptionalInt.empty(), List.of(), reason);
  }

  /** Records how the job ended in its directory, and says so. */
  private JobResult finish(
      PlanJob job, Path dir, int attempts, long start, JobRunner.Attempt outcome) {
    Duration duration = Duration.ofNanos(System.nanoTime() - start);
    JobResult result =
        new JobResult(
            job.id(),
            job.kind(),
            outcome.status(),
            outcome.exitCode(),
            duration,
            attempts,
            outcome.tests(),
            outcome.reason());
    try {
      if (Files.isDirectory(dir)) {
        Files.writeString(
            dir.resolve("exitcode"),
            outcome.exitCode().isPresent() ? outcome.exitCode().getAsInt() + "\n" : "",
            StandardCharsets.UTF_8);
        Files.writeString(
            dir.resolve("duration"),
            String.format(Locale.ROOT, "%.3f%n", duration.toMillis() / 1000.0),
            StandardCharsets.UTF_8);
      }
    } catch (IOException e) {
      // The result still counts; results.json has the same figures.
    }
    listener.finished(job, result);
    return result;
  }

  /** An attempt's log, summary and artifacts move to {@code attempt-N/} before the next. */
  private static void keepEarlierAttempt(Path dir, int number) {
    try {
      moveAside(dir, "attempt-" + number);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * A job's directory before it runs again in a resumed batch: what the earlier run left moves to
   * {@code earlier-run-N/}.
   */
  public static void keepEarlierRun(Path dir) throws IOException {
    if (!Files.isDirectory(dir)) {
      return;
    }
    int number = 1;
    while (Files.exists(dir.resolve("earlier-run-" + number))) {
      number++;
    }
    moveAside(dir, "earlier-run-" + number);
  }

  /** What an earlier attempt or run left, kept aside. */
  static boolean kept(String name) {
    return name.startsWith("attempt-") || name.startsWith("earlier-run-");
  }

  /** Moves what {@code dir} holds but earlier attempts and runs into {@code dir/name/}, if any. */
  private static void moveAside(Path dir, String name) throws IOException {
    List<Path> left;
    try (Stream<Path> entries = Files.list(dir)) {
      left = entries.filter(p -> !kept(p.getFileName().toString())).toList();
    }
    if (left.isEmpty()) {
      return;
    }
    Path aside = Files.createDirectory(dir.resolve(name));
    for (Path entry : left) {
      Files.move(entry, aside.resolve(entry.getFileName()));
    }
  }

  private static List<JobResult> inPlanOrder(Plan plan, List<JobResult> done) {
    Map<String, JobResult> byId = new HashMap<>();
    done.forEach(result -> byId.put(result.id(), result));
    List<JobResult> results = new ArrayList<>();
    for (PlanJob job : plan.jobs()) {
      results.add(byId.getOrDefault(job.id(), notStarted(job)));
    }
    return results;
  }

  /** A job the batch never started: it was interrupted first. */
  private static JobResult notStarted(PlanJob job) {
    return new JobResult(
        job.id(),
        job.kind(),
        JobStatus.interrupted,
        OptionalInt.empty(),
        Duration.ZERO,
        0,
        List.of(),
        "not started: the batch was interrupted");
  }

  static String spoken(Duration duration) {
    long seconds = duration.toSeconds();
    if (seconds % 3600 == 0 && seconds > 0) {
      return seconds / 3600 + "h";
    }
    if (seconds % 60 == 0 && seconds > 0) {
      return seconds / 60 + "m";
    }
    return duration.toMillis() % 1000 == 0 ? seconds + "s" : duration.toMillis() + "ms";
  }
}
