package org.uchroot.engine;

import java.util.concurrent.CompletionStage;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobId;

/** A command started in a {@link Session}. Thread-safe. */
public interface Job {

  JobId id();

  /**
   * Completes when the command has ended, its output has been written out and no process of it
   * remains; fails with {@link UchrootException} if the job could not run. Completes on an actor's
   * thread: a callback that blocks needs an executor of its own ({@code thenAcceptAsync}).
   */
  CompletionStage<ExitStatus> result();

  /** Interrupts this command only (SIGINT, then SIGTERM, then a kill, as configured). */
  void interrupt();
}
