package org.uchroot.engine;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.OneLineMessage;

/**
 * Starts the engine's helper programs (the session's namespaces, tar, useradd, rm), each under
 * {@code uchroot-jobd --helper}: in a session of its own, so that a Ctrl+C on the terminal, which
 * reaches the server's process group, leaves them alone; and ended, process group and all, when the
 * engine dies, so that a killed server leaves no tar running.
 */
final class HelperProcess {

  private static final Logger LOG = LoggerFactory.getLogger(HelperProcess.class);

  private HelperProcess() {}

  /** Where helpers find their programs; their environment is otherwise empty. */
  private static final String PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

  /**
   * The one thread that starts helpers, for as long as the JVM runs: a helper's parent-death signal
   * follows the thread that started it, which must not be a pool thread that retires. The
   * terminal's signals are blocked in it, so that a Ctrl+C cannot kill the JVM's spawn helper
   * before it becomes the helper; the helper drops them.
   */
  private static final ExecutorService SPAWNER =
      Executors.newSingleThreadExecutor(
          task -> {
            Thread thread =
                new Thread(
                    () -> {
                      try {
                        TerminalSignals.blockInThisThread();
                      } catch (RuntimeException | LinkageError e) {
                        // Helpers still start, only a Ctrl+C during a spawn can then hurt one.
                        LOG.warn(
                            "cannot block the terminal's signals while spawning: {}", e.toString());
                      }
                      task.run();
                    },
                    "uchroot-spawner");
            thread.setDaemon(true);
            return thread;
          });

  static ProcessBuilder builder(Path libexecDir, List<String> argv) {
    List<String> helper = new ArrayList<>();
    helper.add(libexecDir.resolve(IdMapping.JOB_SERVER).toString());
    helper.add("--helper");
    helper.add(Long.toString(ProcessHandle.current().pid()));
    helper.addAll(argv);
    ProcessBuilder builder = new ProcessBuilder(helper);
    Map<String, String> env = builder.environment();
    env.clear();
    env.put("PATH", PATH);
    FaultHook.tell(env);
    return builder;
  }

  /** Starts what {@link #builder} made, from the {@link #SPAWNER}. */
  static Process start(ProcessBuilder builder) throws IOException {
    try {
      return SPAWNER.submit(builder::start).get();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof IOException io) {
        throw io;
      }
      throw new IllegalStateException(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while starting " + builder.command(), e);
    }
  }

  /** Helpers of opens and reverts under way: what {@link #abortSetUps} ends. */
  private static final Set<Process> SETTING_UP = ConcurrentHashMap.newKeySet();

  /**
   * Runs {@code argv} with stdin from /dev/null and fails with its stderr when it exits non-zero.
   * Blocks: call only from the blocking executor.
   */
  static void run(Path libexecDir, String what, List<String> argv) {
    finish(what, start(libexecDir, what, argv, null, Path.of("/dev/null")));
  }

  /**
   * Runs {@code argv} with stdin from /dev/null and answers what it wrote on stdout, whatever its
   * exit status: for programs that report what they could do. Blocks.
   */
  static String output(Path libexecDir, List<String> argv) {
    Process process;
    try {
      process =
          start(
              builder(libexecDir, argv)
                  .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")))
                  .redirectError(ProcessBuilder.Redirect.DISCARD));
    } catch (IOException e) {
      throw new UchrootException(
          "cannot run " + argv.get(0) + ": " + UchrootException.reason(e), e);
    }
    String out = drain(process.getInputStream());
    waitFor(process);
    return out;
  }

  /**
   * As {@link #run(Path, String, List)}, in the directory {@code dir} and with stdin from a file,
   * as a step of an open or a revert: {@link #abortSetUps} ends it.
   */
  static void runSetUp(Path libexecDir, String what, List<String> argv, Path dir, Path stdin) {
    Process process = start(libexecDir, what, argv, dir, stdin);
    SETTING_UP.add(process);
    try {
      finish(what, process);
    } finally {
      SETTING_UP.remove(process);
    }
  }

  /**
   * Ends every helper of an open or a revert under way, with everything it started: they then fail
   * at once, and leave what they made for their callers to remove.
   */
  static void abortSetUps() {
    for (Process process : SETTING_UP) {
      process.destroy();
    }
  }

  private static Process start(
      Path libexecDir, String what, List<String> argv, Path dir, Path stdin) {
    try {
      return start(
          builder(libexecDir, argv)
              .directory(dir == null ? null : dir.toFile())
              .redirectInput(ProcessBuilder.Redirect.from(stdin.toFile()))
              .redirectOutput(ProcessBuilder.Redirect.DISCARD));
    } catch (IOException e) {
      throw new UchrootException(
          what + ": cannot run " + argv.get(0) + ": " + UchrootException.reason(e), e);
    }
  }

  private static void finish(String what, Process process) {
    String stderr = drain(process.getErrorStream());
    int status = waitFor(process);
    if (status != 0) {
      throw new UchrootException(
          what
              + " failed (exit status "
              + status
              + ")"
              + (stderr.isBlank() ? "" : ": " + OneLineMessage.of(stderr)));
    }
  }

  static int waitFor(Process process) {
    while (true) {
      try {
        return process.waitFor();
      } catch (InterruptedException e) {
        // The executor's threads are not interrupted on purpose; keep waiting for the helper.
      }
    }
  }

  /** What a program says on stderr, at most: the start of it tells what went wrong. */
  private static final int DRAINED_MAX = 64 * 1024;

  /**
   * Reads {@code in} to its end, keeping its first {@link #DRAINED_MAX} bytes, so that the writer
   * never blocks on a full pipe however much it says.
   */
  static String drain(InputStream in) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buffer = new byte[8192];
    try (in) {
      for (int n; (n = in.read(buffer)) >= 0; ) {
        out.write(buffer, 0, Math.min(n, DRAINED_MAX - out.size()));
      }
    } catch (IOException e) {
      // The helper went away; what it wrote so far is all there is.
    }
    return out.toString(StandardCharsets.UTF_8);
  }
}
