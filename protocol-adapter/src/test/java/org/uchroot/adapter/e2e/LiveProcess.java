package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * A command the test watches while it runs (as root): its output, stdout and stderr together, is
 * kept for assertions and copied to a log file in {@link E2e#logDir()}; its stdin stays open for
 * the test to type into. Used by one test thread.
 */
final class LiveProcess implements AutoCloseable {

  private final String name;
  private final List<String> command;
  private final Process process;
  private final OutputStream stdin;
  private final StringBuffer output = new StringBuffer();
  private final Path log;
  private final long started = System.nanoTime();

  private LiveProcess(String name, List<String> command, Process process) throws IOException {
    this.name = name;
    this.command = command;
    this.process = process;
    this.stdin = process.getOutputStream();
    this.log = E2e.logDir().resolve(name.replaceAll("[^A-Za-z0-9._-]", "_") + ".log");
    OutputStream file = Files.newOutputStream(log);
    Thread pump =
        new Thread(
            () -> {
              byte[] buf = new byte[8192];
              try (InputStream in = process.getInputStream();
                  file) {
                int n;
                while ((n = in.read(buf)) > 0) {
                  output.append(new String(buf, 0, n, StandardCharsets.UTF_8));
                  file.write(buf, 0, n);
                  file.flush();
                }
              } catch (IOException e) {
                output.append("\n[e2e] reading output failed: ").append(e).append('\n');
              }
            },
            "live-" + name);
    pump.setDaemon(true);
    pump.start();
  }

  /** Starts {@code command} in {@code cwd} with {@code env} added to the inherited environment. */
  static LiveProcess start(String name, Path cwd, Map<String, String> env, List<String> command)
      throws IOException {
    ProcessBuilder pb =
        new ProcessBuilder(command).directory(cwd.toFile()).redirectErrorStream(true);
    pb.environment().putAll(env);
    return new LiveProcess(name, List.copyOf(command), pb.start());
  }

  long pid() {
    return process.pid();
  }

  String output() {
    return output.toString();
  }

  /** Waits until the output has a line matching {@code pattern}. */
  void awaitOutput(Pattern pattern, Duration limit) {
    Await.until(
        name + " to print a line matching " + pattern,
        limit,
        () -> printed(pattern) || !process.isAlive(),
        this::describe);
    if (!printed(pattern)) {
      fail(name + " ended before printing a line matching " + pattern + "\n" + describe());
    }
  }

  boolean printed(Pattern pattern) {
    return output().lines().anyMatch(l -> pattern.matcher(l).find());
  }

  /** Types {@code text} on the command's stdin. */
  void type(String text) throws IOException {
    stdin.write(text.getBytes(StandardCharsets.UTF_8));
    stdin.flush();
  }

  /** Waits for the end and returns the exit status; fails at the deadline. */
  int waitFor(Duration limit) {
    try {
      if (!process.waitFor(limit.toMillis(), TimeUnit.MILLISECONDS)) {
        fail(name + " did not finish within " + limit + "\n" + describe());
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      fail("interrupted");
    }
    System.out.printf(
        Locale.ROOT,
        "[e2e] %s: exit %d after %.1f s (log %s)%n",
        name,
        process.exitValue(),
        (System.nanoTime() - started) / 1e9,
        log);
    return process.exitValue();
  }

  String describe() {
    List<String> lines = output().lines().toList();
    return "command: "
        + String.join(" ", command)
        + "\nrunning: "
        + process.isAlive()
        + "\nfull log: "
        + log
        + "\n--- last lines of output ---\n"
        + String.join("\n", lines.subList(Math.max(0, lines.size() - 80), lines.size()));
  }

  /** After a failure: nothing of it may outlive the test. */
  @Override
  public void close() {
    if (process.isAlive()) {
      List<ProcessHandle> all = new ArrayList<>(process.descendants().toList());
      all.forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }
    try {
      stdin.close();
    } catch (IOException e) {
      // Already closed.
    }
  }
}
