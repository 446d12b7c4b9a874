package org.uchroot.actors;

import java.util.concurrent.CompletionStage;

/**
 * Starts commands inside a session's namespaces. Never blocks the caller; waits and stream pumps
 * run on executors of the implementation's own.
 */
public interface JobLauncher {

  /** Starts {@code spec} in {@code testbed}; completes once the command's process exists. */
  CompletionStage<RunningJob> launch(Testbed testbed, JobId id, JobSpec spec);

  /** A started command. */
  interface RunningJob {

    /**
     * Completes when the command has exited, every writer of its output has closed (the output is
     * fully relayed), and no process it started remains: its mounts are released.
     */
    CompletionStage<ExitStatus> finished();

    /**
     * Delivers {@code signal} to the command's whole process tree; {@link Signal#KILL} ends the
     * tree at once. Safe from any thread; does not wait.
     */
    void signal(Signal signal);
  }
}
