package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.LeakCheck;

/**
 * {@code uchroot run} on a terminal, as a user at a terminal runs it: util-linux's script(1) gives
 * it one. The command gets a pseudo-terminal of the terminal's size, the keys (Ctrl+C included) are
 * the command's, and the terminal is given back as it was.
 */
@Tag("e2e")
class RunTerminalE2ETest {

  private static final Duration LIMIT = Duration.ofSeconds(120);

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void theCommandRunsOnATerminalOfTheTerminalsSize(E2e.Caller caller) throws Exception {
    theCommandRunsOnATerminalOfTheTerminalsSize(caller.user());
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void ctrlCIsTheCommandsAndTheTestbedGoes(E2e.Caller caller) throws Exception {
    ctrlCIsTheCommandsAndTheTestbedGoes(caller.user());
  }

  private void theCommandRunsOnATerminalOfTheTerminalsSize(String user) throws Exception {
    E2e.requireRoot();
    E2e.requireCommands("script");
    Path work = SignalFixtures.workDir(tempDir, user);
    String inside = "tty; stty size; [ -t 2 ] && echo stderr too >&2; exit 3";
    String atTheTerminal =
        "stty rows 40 cols 100; before=$(stty -g); "
            + uchrootRun(work, inside)
            + "; status=$?; "
            + "[ \"$(stty -g)\" = \"$before\" ] && echo terminal restored; exit $status";
    Process process =
        onATerminal(work, user, SignalFixtures.environment(work, user, leaks), atTheTerminal);
    // Nobody types, and the keyboard stays: script(1) would send an end of file of its own.
    try (OutputStream keys = process.getOutputStream()) {
      Screen screen = new Screen(process.getInputStream(), LIMIT);
      assertTrue(process.waitFor(LIMIT.toSeconds(), TimeUnit.SECONDS), screen.text());
      assertEquals(3, process.exitValue(), screen.text());
      screen.awaitLines("/dev/pts/0\n40 100\nstderr too\n");
      screen.awaitLines("terminal restored\n");
    } finally {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }
    assertEquals(List.of(), testbeds(work));
  }

  private void ctrlCIsTheCommandsAndTheTestbedGoes(String user) throws Exception {
    E2e.requireRoot();
    E2e.requireCommands("script");
    Path work = SignalFixtures.workDir(tempDir, user);
    Process process =
        onATerminal(
            work,
            user,
            SignalFixtures.environment(work, user, leaks),
            uchrootRun(work, "echo ready; exec cat"));
    try (OutputStream keys = process.getOutputStream()) {
      Screen screen = new Screen(process.getInputStream(), LIMIT);
      // Once the command speaks, uchroot has the terminal in raw mode: ^C is a key.
      screen.awaitText("ready");
      keys.write("typed\r".getBytes(StandardCharsets.US_ASCII));
      keys.flush();
      screen.awaitText("typed\r\ntyped\r\n");
      keys.write(3);
      keys.flush();
      assertTrue(process.waitFor(LIMIT.toSeconds(), TimeUnit.SECONDS), screen.text());
      assertEquals(130, process.exitValue(), screen.text());
      assertTrue(
          !screen.text().contains("SIGINT"), "uchroot took the key as its own: " + screen.text());
    } finally {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }
    assertEquals(List.of(), testbeds(work));
  }

  /**
   * {@code shellCommand} on a new terminal (script(1)), in {@code work} as {@code user} (null:
   * root) with {@code env}; its stdin is the keyboard, its stdout the screen.
   */
  static Process onATerminal(Path work, String user, Map<String, String> env, String shellCommand)
      throws IOException {
    List<String> argv = new ArrayList<>();
    if (user != null) {
      argv.addAll(List.of("runuser", "-u", user, "--", "env"));
      env.forEach((k, v) -> argv.add(k + "=" + v));
    }
    argv.addAll(script(shellCommand));
    ProcessBuilder builder =
        new ProcessBuilder(argv).directory(work.toFile()).redirectErrorStream(true);
    builder.environment().putAll(env);
    return builder.start();
  }

  /** {@code uchroot run} of {@code command} in a busybox testbed whose directory is known. */
  private static String uchrootRun(Path work, String command) throws IOException {
    return "uchroot run -t "
        + SignalFixtures.busyboxTarball()
        + " -u "
        + SignalFixtures.rootfs(work, "run")
        + " -- sh -c '"
        + command
        + "'";
  }

  /** {@code shellCommand} run on a new terminal; script exits with its status. */
  private static List<String> script(String shellCommand) {
    return List.of(
        "script", "--quiet", "--return", "--flush", "--command", shellCommand, "/dev/null");
  }

  private static List<Path> testbeds(Path work) throws IOException {
    try (Stream<Path> files = Files.list(work)) {
      return files.filter(p -> p.getFileName().toString().startsWith("run-")).toList();
    }
  }

  /** What a terminal shows, read as it comes. */
  static final class Screen {
    private final ByteArrayOutputStream shown = new ByteArrayOutputStream();
    private final Duration limit;

    /**
     * @param limit the longest a wait for text may take
     */
    Screen(InputStream output, Duration limit) {
      this.limit = limit;
      Thread reader =
          new Thread(
              () -> {
                byte[] buffer = new byte[4096];
                int n;
                try {
                  while ((n = output.read(buffer)) > 0) {
                    synchronized (shown) {
                      shown.write(buffer, 0, n);
                      shown.notifyAll();
                    }
                  }
                } catch (IOException e) {
                  // The terminal closed.
                }
              });
      reader.setDaemon(true);
      reader.start();
    }

    String text() {
      synchronized (shown) {
        return shown.toString(StandardCharsets.UTF_8);
      }
    }

    /** Waits until the screen shows {@code text}, byte for byte. */
    void awaitText(String text) throws InterruptedException {
      awaitScreen(text, false);
    }

    /**
     * Waits until the screen shows {@code lines} as a reader sees them: without carriage returns
     * and the terminal's control sequences (such as bash's bracketed paste mode).
     */
    void awaitLines(String lines) throws InterruptedException {
      awaitScreen(lines, true);
    }

    private static String asRead(String text) {
      return text.replaceAll("\u001b\\[[0-9;?]*[A-Za-z]", "").replace("\r", "");
    }

    private void awaitScreen(String text, boolean readable) throws InterruptedException {
      long deadline = System.nanoTime() + limit.toNanos();
      synchronized (shown) {
        while (!(readable ? asRead(text()) : text()).contains(text)) {
          long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
          assertTrue(left > 0, "the terminal never showed " + text + ": " + shown);
          shown.wait(left);
        }
      }
    }
  }
}
