package org.uchroot.engine;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.Executor;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.JobId;
import org.uchroot.actors.JobLauncher;
import org.uchroot.actors.JobSpec;
import org.uchroot.actors.Signal;
import org.uchroot.actors.Testbed;

/**
 * Starts each command through {@code uchroot-enter}, which joins the session's namespaces, gives
 * the command a pid namespace of its own nested in the session's, chroots into the rootfs and
 * relays the output until every writer has closed. Its exit therefore means that no process of
 * the command remains.
 */
final class LinuxJobLauncher implements JobLauncher {

  private static final Logger LOG = LoggerFactory.getLogger(LinuxJobLauncher.class);

  /**
   * Asks uchroot-enter to end the whole job at once (SIGRTMIN+6 with glibc). A plain SIGKILL would
   * end uchroot-enter before the job's processes are gone.
   */
  static final int KILL_JOB_SIGNAL = 40;

  private final EngineConfig config;
  private final Executor blocking;
  private final Executor io;

  LinuxJobLauncher(EngineConfig config, Executor blocking, Executor io) {
    this.config = config;
    this.blocking = blocking;
    this.io = io;
  }

  @Override
  public CompletionStage<RunningJob> launch(Testbed testbed, JobId id, JobSpec spec) {
    return CompletableFuture.supplyAsync(() -> start(testbed, id, spec), blocking);
  }

  private RunningJob start(Testbed testbed, JobId id, JobSpec spec) {
    NamespaceSandbox sandbox = (NamespaceSandbox) testbed.sandbox();
    List<String> argv = new ArrayList<>();
    argv.add(config.libexecDir().resolve("uchroot-enter").toString());
    argv.addAll(
        List.of(
            "--target",
            Long.toString(sandbox.initPid()),
            "--root",
            sandbox.root().toString(),
            "--"));
    argv.addAll(spec.argv());
    Process process;
    try {
      process = HelperProcess.builder(argv).start();
    } catch (IOException e) {
      throw new UchrootException("cannot start " + spec.argv().get(0) + ": " + e.getMessage(), e);
    }
    LOG.debug("job {} started as pid {}: {}", id, process.pid(), spec.argv());
    CompletableFuture<Void> out =
        pump(process.getInputStream(), spec.stdio().stdout(), false);
    CompletableFuture<Void> err =
        pump(process.getErrorStream(), spec.stdio().stderr(), false);
    pump(spec.stdio().stdin(), process.getOutputStream(), true);
    CompletableFuture<ExitStatus> finished =
        process
            .onExit()
            .thenCombine(CompletableFuture.allOf(out, err), (p, ignored) -> p)
            .thenApply(p -> ExitStatus.fromShellStatus(p.exitValue()));
    return new LinuxJob(process, finished);
  }

  /**
   * Copies {@code from} to {@code to} until end of file on an io thread, flushing as data comes;
   * closes {@code to} at the end only when asked (the process's stdin, not the caller's streams).
   */
  private CompletableFuture<Void> pump(InputStream from, OutputStream to, boolean closeTo) {
    return CompletableFuture.runAsync(
        () -> {
          byte[] buffer = new byte[65536];
          boolean sinkOpen = true;
          try (from) {
            int n;
            while ((n = from.read(buffer)) >= 0) {
              if (sinkOpen) {
                try {
                  to.write(buffer, 0, n);
                  to.flush();
                } catch (IOException e) {
                  if (closeTo) {
                    // The command closed its stdin: stop taking input meant for it.
                    break;
                  }
                  // The reader of the output went away; keep draining so writers never block.
                  sinkOpen = false;
                }
              }
            }
          } catch (IOException e) {
            // The process side closed: nothing more to copy.
          } finally {
            if (closeTo) {
              try {
                to.close();
              } catch (IOException e) {
                // The process already closed its stdin.
              }
            }
          }
        },
        io);
  }

  private static final class LinuxJob implements RunningJob {
    private final Process process;
    private final CompletableFuture<ExitStatus> finished;

    LinuxJob(Process process, CompletableFuture<ExitStatus> finished) {
      this.process = process;
      this.finished = finished;
    }

    @Override
    public CompletionStage<ExitStatus> finished() {
      return finished;
    }

    @Override
    public void signal(Signal signal) {
      int number = signal == Signal.KILL ? KILL_JOB_SIGNAL : signal.number();
      Host.kill(process.pid(), number);
    }
  }
}
