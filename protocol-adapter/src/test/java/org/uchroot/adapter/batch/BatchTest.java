package org.uchroot.adapter.batch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import akka.actor.ActorSystem;
import akka.stream.Materializer;
import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class BatchTest {

  private static ActorSystem system;
  private static Materializer materializer;

  @TempDir Path results;

  @BeforeAll
  static void start() {
    system =
        ActorSystem.create(
            "batch-test",
            ConfigFactory.parseString("akka.stdout-loglevel = OFF\nakka.loglevel = OFF"));
    materializer = Materializer.matFromSystem(system);
  }

  @AfterAll
  static void stop() {
    system.terminate();
  }

  /** Attempts that end when the test says, or as their script says at once. */
  private static final class FakeRunner implements JobRunner {
    final List<FakeJob> started = new CopyOnWriteArrayList<>();
    final Map<String, List<JobRunner.Attempt>> scripts = new ConcurrentHashMap<>();
    final AtomicInteger running = new AtomicInteger();
    final AtomicInteger mostAtOnce = new AtomicInteger();
    final AtomicInteger commandInterrupts = new AtomicInteger();

    @Override
    public RunningJob start(PlanJob job, Path dir) {
      FakeJob started = new FakeJob(job, running);
      this.started.add(started);
      mostAtOnce.accumulateAndGet(running.incrementAndGet(), Math::max);
      try {
        Files.writeString(dir.resolve("log"), "attempt of " + job.id() + "\n");
      } catch (IOException e) {
        throw new AssertionError(e);
      }
      List<JobRunner.Attempt> script = scripts.get(job.id());
      if (script != null && !script.isEmpty()) {
        started.end(script.remove(0));
      }
      return started;
    }

    @Override
    public void interruptCommands() {
      commandInterrupts.incrementAndGet();
    }
  }

  private static final class FakeJob implements JobRunner.RunningJob {
    final PlanJob job;
    final AtomicInteger running;
    final CompletableFuture<JobRunner.Attempt> attempt = new CompletableFuture<>();
    volatile boolean interrupted;

    FakeJob(PlanJob job, AtomicInteger running) {
      this.job = job;
      this.running = running;
    }

    /** Counted as over before the batch hears of it, which may start the next job at once. */
    void end(JobRunner.Attempt ended) {
      if (!attempt.isDone()) {
        running.decrementAndGet();
        attempt.complete(ended);
      }
    }

    @Override
    public CompletionStage<JobRunner.Attempt> ended() {
      return attempt;
    }

    @Override
    public void interrupt() {
      interrupted = true;
      // As autopkgtest does on SIGTERM: it cleans up, then exits with a testbed failure.
      end(attemptOf(JobStatus.tmpfail, 20));
    }

    @Override
    public void kill() {
      end(attemptOf(JobStatus.tmpfail, 137));
    }
  }

  private static JobRunner.Attempt attemptOf(JobStatus status, int exit) {
    return new JobRunner.Attempt(status, OptionalInt.of(exit), List.of(), "");
  }

  private static PlanJob shell(String id, Optional<Duration> timeout, PlanJob.Retries retries) {
    return new PlanJob.Shell(id, "true", Path.of("/x.tar"), timeout, retries);
  }

  private static PlanJob shell(String id) {
    return shell(id, Optional.empty(), PlanJob.Retries.NONE);
  }

  private static void await(String what, BooleanSupplier condition) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("waited 10 s for " + what);
      }
      Thread.sleep(5);
    }
  }

  @Test
  void atMostParallelismJobsRunAtOnceAndResultsKeepThePlansOrder() throws Exception {
    FakeRunner runner = new FakeRunner();
    List<PlanJob> jobs = new ArrayList<>();
    for (int i = 1; i <= 5; i++) {
      jobs.add(shell("job-" + i));
    }
    Batch batch = new Batch(runner, materializer, results, new Batch.Listener() {});
    CompletableFuture<List<JobResult>> done =
        batch.run(new Plan("p", 2, jobs), 2, Map.of()).toCompletableFuture();
    for (int finished = 0; finished < 5; finished++) {
      int expected = Math.min(5, finished + 2);
      await(expected + " started", () -> runner.started.size() >= expected);
      // Out of order: the results still come in the plan's.
      runner
          .started
          .get(finished == 0 ? 1 : finished == 1 ? 0 : finished)
          .end(attemptOf(finished % 2 == 0 ? JobStatus.pass : JobStatus.fail, finished % 2));
    }
    List<JobResult> outcome = done.get(10, TimeUnit.SECONDS);
    assertEquals(2, runner.mostAtOnce.get());
    assertEquals(
        List.of("job-1", "job-2", "job-3", "job-4", "job-5"),
        outcome.stream().map(JobResult::id).toList());
    assertEquals(1, Batch.exitStatus(outcome, false));
    assertTrue(Files.readString(results.resolve("results.json")).contains("\"id\" : \"job-5\""));
    assertEquals("0\n", Files.readString(results.resolve("job-2/exitcode")));
  }

  @Test
  void aTmpfailIsTriedAgainAfterItsBackOffUpToItsRetries() throws Exception {
    FakeRunner runner = new FakeRunner();
    PlanJob.Retries twice = new PlanJob.Retries(2, Duration.ZERO);
    runner.scripts.put(
        "flaky",
        new ArrayList<>(List.of(attemptOf(JobStatus.tmpfail, 16), attemptOf(JobStatus.pass, 0))));
    runner.scripts.put(
        "broken",
        new ArrayList<>(
            List.of(
                attemptOf(JobStatus.tmpfail, 16),
                attemptOf(JobStatus.tmpfail, 16),
                attemptOf(JobStatus.tmpfail, 16))));
    List<JobResult> outcome =
        new Batch(runner, materializer, results, new Batch.Listener() {})
            .run(
                new Plan(
                    "p",
                    2,
                    List.of(
                        shell("flaky", Optional.empty(), twice),
                        shell("broken", Optional.empty(), twice))),
                2,
                Map.of())
            .toCompletableFuture()
            .get(10, TimeUnit.SECONDS);
    assertEquals(JobStatus.pass, outcome.get(0).status());
    assertEquals(2, outcome.get(0).attempts());
    assertEquals(JobStatus.tmpfail, outcome.get(1).status());
    assertEquals(3, outcome.get(1).attempts());
    assertEquals(4, Batch.exitStatus(outcome, false));
    // Each earlier attempt's log is kept.
    assertTrue(Files.isRegularFile(results.resolve("broken/attempt-1/log")));
    assertTrue(Files.isRegularFile(results.resolve("broken/attempt-2/log")));
    assertTrue(Files.isRegularFile(results.resolve("broken/log")));
  }

  @Test
  void aJobPastItsTimeoutIsInterruptedAndFails() throws Exception {
    FakeRunner runner = new FakeRunner();
    List<JobResult> outcome =
        new Batch(runner, materializer, results, new Batch.Listener() {})
            .run(
                new Plan(
                    "p",
                    1,
                    List.of(
                        shell(
                            "slow",
                            Optional.of(Duration.ofMillis(100)),
                            new PlanJob.Retries(3, Duration.ZERO)))),
                1,
                Map.of())
            .toCompletableFuture()
            .get(10, TimeUnit.SECONDS);
    assertTrue(runner.started.get(0).interrupted);
    assertEquals(JobStatus.fail, outcome.get(0).status());
    assertEquals("timed out after 100ms", outcome.get(0).reason());
    // A timeout is the job's, not a tmpfail: it is not tried again.
    assertEquals(1, outcome.get(0).attempts());
  }

  @Test
  void anInterruptStartsNoMoreJobsAndStopsTheRunningOnes() throws Exception {
    FakeRunner runner = new FakeRunner();
    List<String> said = new CopyOnWriteArrayList<>();
    Batch batch =
        new Batch(
            runner,
            materializer,
            results,
            new Batch.Listener() {
              @Override
              public void finished(PlanJob job, JobResult result) {
                said.add(result.id() + " " + result.status());
              }
            });
    CompletableFuture<List<JobResult>> done =
        batch
            .run(
                new Plan("p", 1, List.of(shell("first"), shell("second"), shell("third"))),
                1,
                Map.of())
            .toCompletableFuture();
    await("the first job", () -> runner.started.size() == 1);
    batch.interrupt();
    List<JobResult> outcome = done.get(10, TimeUnit.SECONDS);
    assertEquals(1, runner.started.size(), "a job started after the interrupt");
    assertTrue(runner.started.get(0).interrupted);
    assertEquals(1, runner.commandInterrupts.get());
    assertEquals(
        List.of(JobStatus.interrupted, JobStatus.interrupted, JobStatus.interrupted),
        outcome.stream().map(JobResult::status).toList());
    assertEquals(1, outcome.get(0).attempts());
    assertEquals(0, outcome.get(1).attempts());
    assertEquals("not started: the batch was interrupted", outcome.get(2).reason());
    assertEquals(List.of("first interrupted"), said);
    assertEquals(130, Batch.exitStatus(outcome, batch.interrupted()));
  }

  @Test
  void aResumedBatchRunsOnlyTheJobsWithoutAnEarlierResult() throws Exception {
    FakeRunner runner = new FakeRunner();
    runner.scripts.put("second", new ArrayList<>(List.of(attemptOf(JobStatus.pass, 0))));
    JobResult earlier = result(JobStatus.fail);
    List<JobResult> outcome =
        new Batch(runner, materializer, results, new Batch.Listener() {})
            .run(new Plan("p", 2, List.of(shell("j"), shell("second"))), 2, Map.of("j", earlier))
            .toCompletableFuture()
            .get(10, TimeUnit.SECONDS);
    assertEquals(List.of("second"), runner.started.stream().map(f -> f.job.id()).toList());
    assertEquals(
        List.of(earlier.status(), JobStatus.pass),
        outcome.stream().map(JobResult::status).toList());
    assertEquals(1, Batch.exitStatus(outcome, false));
  }

  @Test
  void anEarlierRunsFilesMoveAsideBeforeTheJobRunsAgain() throws Exception {
    Path job = Files.createDirectories(results.resolve("j"));
    Files.writeString(job.resolve("log"), "first run\n");
    Files.createDirectories(job.resolve("attempt-1"));
    Batch.keepEarlierRun(job);
    Files.writeString(job.resolve("log"), "second run\n");
    Batch.keepEarlierRun(job);
    assertEquals("first run\n", Files.readString(job.resolve("earlier-run-1/log")));
    assertEquals("second run\n", Files.readString(job.resolve("earlier-run-2/log")));
    assertTrue(Files.isDirectory(job.resolve("attempt-1")));
    assertFalse(Files.exists(job.resolve("log")));
  }

  @Test
  void theExitStatusSaysTheWorstThatIsLeft() {
    JobResult pass = result(JobStatus.pass);
    JobResult neutral = result(JobStatus.neutral);
    assertEquals(0, Batch.exitStatus(List.of(pass, neutral), false));
    assertEquals(4, Batch.exitStatus(List.of(pass, result(JobStatus.tmpfail)), false));
    assertEquals(
        1, Batch.exitStatus(List.of(result(JobStatus.tmpfail), result(JobStatus.error)), false));
    assertEquals(1, Batch.exitStatus(List.of(result(JobStatus.fail)), false));
    assertEquals(130, Batch.exitStatus(List.of(pass), true));
    assertFalse(JobStatus.interrupted.passed());
  }

  private static JobResult result(JobStatus status) {
    return new JobResult(
        "j", PlanJob.Kind.shell, status, OptionalInt.of(0), Duration.ZERO, 1, List.of(), "");
  }
}
