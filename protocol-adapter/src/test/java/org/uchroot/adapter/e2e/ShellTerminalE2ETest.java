package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.OutputStream;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.LeakCheck;

/**
 * The {@code shell} request, as autopkgtest's --shell makes it: the server runs on a terminal
 * (util-linux's script(1) gives it one) and reads the protocol from a pipe; the testbed's bash gets
 * the terminal as a pseudo-terminal, with job control and the keys, and the terminal is given back.
 */
@Tag("e2e")
class ShellTerminalE2ETest {

  private static final Duration LIMIT = Duration.ofSeconds(300);

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void theShellRunsOnATerminalWithJobControl(E2e.Caller caller) throws Exception {
    theShellRunsOnATerminalWithJobControl(caller.user());
  }

  private void theShellRunsOnATerminalWithJobControl(String user) throws Exception {
    E2e.requireRoot();
    E2e.requireCommands("script", "mkfifo");
    Path work = SignalFixtures.workDir(tempDir, user);
    Path requests = fifo(work.resolve("requests"), user);
    Path answers = fifo(work.resolve("answers"), user);
    Path resize = fifo(work.resolve("resize"), user);
    String server =
        "stty rows 30 cols 90; before=$(stty -g); (read x <"
            + resize
            + " && stty rows 35 cols 95 </dev/tty) & autopkgtest-virt-uchroot -t "
            + E2e.debianTarball()
            + " <"
            + requests
            + " >"
            + answers
            + "; wait; [ \"$(stty -g)\" = \"$before\" ] && echo terminal restored";
    Process process =
        RunTerminalE2ETest.onATerminal(
            work, user, SignalFixtures.environment(work, user, leaks), server);
    try (OutputStream keys = process.getOutputStream()) {
      RunTerminalE2ETest.Screen screen =
          new RunTerminalE2ETest.Screen(process.getInputStream(), LIMIT);
      // The server opens its stdin, then its stdout: the same order here.
      try (Writer ask = within(() -> Files.newBufferedWriter(requests, StandardCharsets.UTF_8));
          BufferedReader answer =
              within(() -> Files.newBufferedReader(answers, StandardCharsets.UTF_8))) {
        assertEquals("ok", within(answer::readLine), "the server's greeting\n" + screen.text());
        ask.write("open\n");
        ask.flush();
        String opened = within(answer::readLine);
        assertTrue(opened != null && opened.startsWith("ok "), opened + "\n" + screen.text());

        ask.write("shell /tmp A=1\n");
        ask.flush();
        screen.awaitText(":/tmp# ");
        // Printed as computed, so that the terminal's echo of the line does not match.
        keys.write(
            ("printf 'tty=%s A=%s\\n' \"$(tty)\" \"$A\"; stty size | tr ' ' x; "
                    + "case $- in *m*) echo \"job\"\"-control\";; esac\r")
                .getBytes(StandardCharsets.UTF_8));
        keys.flush();
        screen.awaitLines("\ntty=/dev/pts/0 A=1\n30x90\njob-control\n");
        // The host terminal resized: the shell's follows, whichever process holds the host's.
        Files.writeString(resize, "now\n");
        keys.write(
            "until [ \"$(stty size)\" = \"35 95\" ]; do sleep 0.1; done; echo \"re\"\"sized\"; exit\r"
                .getBytes(StandardCharsets.UTF_8));
        keys.flush();
        assertEquals("ok", within(answer::readLine), screen.text());
        screen.awaitLines("\nresized\n");

        ask.write("close\nquit\n");
        ask.flush();
        assertEquals("ok", within(answer::readLine), screen.text());
      }
      assertTrue(process.waitFor(LIMIT.toSeconds(), TimeUnit.SECONDS), screen.text());
      assertEquals(0, process.exitValue(), screen.text());
      screen.awaitText("terminal restored");
    } finally {
      process.descendants().forEach(ProcessHandle::destroyForcibly);
      process.destroyForcibly();
    }
  }

  private static Path fifo(Path path, String user) throws IOException, InterruptedException {
    Process mkfifo = new ProcessBuilder("mkfifo", "-m", "600", path.toString()).inheritIO().start();
    assertEquals(0, mkfifo.waitFor());
    if (user != null) {
      E2e.chownTree(path, user);
    }
    return path;
  }

  /** What {@code step} returns, failing the test if the server keeps it waiting too long. */
  private static <T> T within(Callable<T> step) throws Exception {
    CompletableFuture<T> result = new CompletableFuture<>();
    Thread waiting =
        new Thread(
            () -> {
              try {
                result.complete(step.call());
              } catch (Exception e) {
                result.completeExceptionally(e);
              }
            });
    waiting.setDaemon(true);
    waiting.start();
    return result.get(LIMIT.toSeconds(), TimeUnit.SECONDS);
  }
}
