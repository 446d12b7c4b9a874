package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.uchroot.adapter.e2e.VirtServerProcess.exec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.uchroot.engine.LeakCheck;

/**
 * Whatever ends the conversation (end of input, {@code quit}, SIGTERM, SIGHUP), the server first
 * interrupts what runs, waits for it to be gone and removes the rootfs, and only then exits: 12 at
 * end of input, 0 after {@code quit}, by the signal itself after SIGTERM or SIGHUP. {@code revert}
 * does the same before it makes the testbed afresh.
 */
@Tag("e2e")
class SignalServerEndE2ETest {

  private static final Duration JOB_LIMIT = Duration.ofSeconds(30);

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"end of input", "quit", "SIGTERM", "SIGHUP"})
  void theServerRemovesTheTestbedBeforeItEnds(String event) throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("perl", "mkfifo");
    Path work = SignalFixtures.workDir(tempDir, null);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    leaks.watch(work.resolve("tmp"));
    String name = "signal-end-" + event.replace(' ', '-');

    try (VirtServerProcess server =
        VirtServerProcess.start(
            name,
            null,
            work.resolve("group"),
            SignalFixtures.environment(work, null, leaks),
            List.of("-t", SignalFixtures.busyboxTarball().toString(), "-u", rootfs.toString()))) {
      server.ok("open");
      VirtServerProcess.Job job =
          server.launch(
              "running", exec(server.execProgram(), "echo started; while :; do sleep 1; done"));
      job.awaitLine("started", JOB_LIMIT);

      long sent = System.nanoTime();
      String expected =
          switch (event) {
            case "end of input" -> {
              server.closeInput();
              yield "exit 12";
            }
            case "quit" -> {
              server.send("quit");
              yield "exit 0";
            }
            case "SIGTERM" -> {
              server.signalServer(VirtServerProcess.SIGTERM);
              yield "signal 15";
            }
            case "SIGHUP" -> {
              server.signalServer(VirtServerProcess.SIGHUP);
              yield "signal 1";
            }
            default -> throw new IllegalArgumentException(event);
          };
      String ended = server.awaitServerExit(JOB_LIMIT);
      // Checked at once: the testbed must be gone before the server ends, not after.
      boolean rootfsLeft = Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS);
      SignalFixtures.report(
          name, event + " to the server's end", Duration.ofNanos(System.nanoTime() - sent));
      assertEquals(expected, ended, server.describe());
      assertFalse(rootfsLeft, rootfs + " still there when the server ended\n" + server.describe());
      assertEquals(
          "exit 130", job.awaitStatus(JOB_LIMIT), "the command is interrupted\n" + job.describe());
    }
  }

  @Test
  void revertInterruptsWhatRunsAndGivesAFreshTestbed() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("perl", "mkfifo");
    Path work = SignalFixtures.workDir(tempDir, null);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    leaks.watch(work.resolve("tmp"));

    try (VirtServerProcess server =
        VirtServerProcess.start(
            "signal-revert",
            null,
            work.resolve("group"),
            SignalFixtures.environment(work, null, leaks),
            List.of("-t", SignalFixtures.busyboxTarball().toString(), "-u", rootfs.toString()))) {
      String scratch = server.ok("open");
      List<String> execProgram = server.execProgram();
      VirtServerProcess.Job job =
          server.launch(
              "running",
              exec(execProgram, "echo started; while :; do date > /marker; sleep 0.1; done"));
      job.awaitLine("started", JOB_LIMIT);

      long reverting = System.nanoTime();
      assertEquals(scratch, server.ok("revert"), "revert keeps the scratch path");
      SignalFixtures.report(
          "revert",
          "revert with a running command",
          Duration.ofNanos(System.nanoTime() - reverting));
      assertEquals("exit 130", job.awaitStatus(JOB_LIMIT), job.describe());
      assertEquals("state=open jobs=0 interrupts=0", server.ok("status"));
      VirtServerProcess.Job fresh =
          server.run("fresh", server.execProgram(), "test ! -e /marker && echo fresh", JOB_LIMIT);
      assertEquals(
          "exit 0",
          fresh.status(),
          "the reverted testbed still has the marker\n" + fresh.describe());

      server.ok("close");
      assertFalse(Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS), rootfs + " survived close");
      assertTrue(server.serverStatus() == null, server.describe());
      server.send("quit");
      assertEquals("exit 0", server.awaitServerExit(JOB_LIMIT), server.describe());
    }
  }
}
