package org.uchroot.adapter.batch;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.CompletionStage;

/** Starts the attempts of a batch's jobs: the host's side of a batch, faked in its specs. */
public interface JobRunner {

  /**
   * Starts one attempt of {@code job}; its log ({@code log}), autopkgtest's {@code summary} and the
   * runner's {@code artifacts/} go into {@code dir}, which exists. Never blocks.
   */
  RunningJob start(PlanJob job, Path dir);

  /** Interrupts the commands of every testbed, as a Ctrl+C asks: none is closed. */
  void interruptCommands();

  /** An attempt under way. */
  interface RunningJob {

    /** Completes when the attempt has ended and its testbed is gone. */
    CompletionStage<Attempt> ended();

    /** Stops it and lets it clean up: its command interrupted, a runner sent SIGTERM. */
    void interrupt();

    /** Ends it at once: its command killed, a runner killed; its testbed is still removed. */
    void kill();
  }

  /**
   * How an attempt ended.
   *
   * @param exitCode the runner's or the shell command's; empty where it never ran
   * @param reason what went wrong, in one line, where the status alone does not say it
   */
  record Attempt(
      JobStatus status, OptionalInt exitCode, List<JobResult.TestVerdict> tests, String reason) {
    public Attempt {
      Objects.requireNonNull(status, "status");
      Objects.requireNonNull(exitCode, "exitCode");
      tests = List.copyOf(tests);
      Objects.requireNonNull(reason, "reason");
    }

    /** A job that could not start: a missing file, a tarball that is not one. */
    public static Attempt error(String reason) {
      return new Attempt(JobStatus.error, OptionalInt.empty(), List.of(), reason);
    }
  }
}
