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
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.LeakCheck;

/**
 * {@code close} ends what still runs in the testbed, whatever it does about signals, before the
 * rootfs goes: a command that ignores SIGINT and SIGTERM is killed once the grace periods are over,
 * and a daemon that left its command's session is gone too.
 */
@Tag("e2e")
class SignalCloseE2ETest {

  private static final Duration JOB_LIMIT = Duration.ofSeconds(30);

  /** Two one-second grace periods: anything near this long means close hangs. */
  private static final Duration CLOSE_LIMIT = Duration.ofSeconds(60);

  private static final List<String> SHORT_GRACE =
      List.of("--grace-before-term", "1s", "--grace-before-kill", "1s");
  private static final Pattern SIGNAL_STATUS = Pattern.compile("exit (\\d+)");

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void closeKillsACommandIgnoringSignals(E2e.Caller caller) throws IOException {
    closeKillsACommandIgnoringSignals(caller.user());
  }

  private void closeKillsACommandIgnoringSignals(String user) throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("perl", "runuser", "mkfifo");
    String who = SignalFixtures.who(user);
    Path work = SignalFixtures.workDir(tempDir, user);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    leaks.watch(work.resolve("tmp"));

    try (VirtServerProcess server = start("signal-stubborn-" + who, user, work, rootfs)) {
      server.ok("open");
      List<String> execProgram = server.execProgram();
      // The ignored dispositions pass to every child, sleep included.
      VirtServerProcess.Job stubborn =
          server.launch(
              "stubborn",
              exec(execProgram, "trap '' INT TERM; echo armed; while :; do sleep 1; done"));
      stubborn.awaitLine("armed", JOB_LIMIT);

      long closing = System.nanoTime();
      String answer = server.request("close", CLOSE_LIMIT);
      Duration closed = Duration.ofNanos(System.nanoTime() - closing);
      SignalFixtures.report(
          "stubborn " + who, "close with a command ignoring INT and TERM (grace 1s + 1s)", closed);
      assertEquals("ok", answer, server.describe());
      assertFalse(Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS), rootfs + " survived close");

      String status = stubborn.awaitStatus(JOB_LIMIT);
      Matcher m = SIGNAL_STATUS.matcher(status);
      assertTrue(
          m.matches() && Integer.parseInt(m.group(1)) > 128,
          "the exec program of a killed command must exit with 128+signal, not "
              + status
              + "\n"
              + stubborn.describe());
      System.out.println("[e2e] stubborn " + who + ": its exec program: " + status);

      server.send("quit");
      assertEquals("exit 0", server.awaitServerExit(JOB_LIMIT), server.describe());
    }
  }

  @Test
  void closeLeavesNoProcessOfADoubleForkedDaemon() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("perl", "mkfifo");
    Path work = SignalFixtures.workDir(tempDir, null);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    leaks.watch(work.resolve("tmp"));
    String marker = SignalFixtures.marker("daemon");

    try (VirtServerProcess server = start("signal-daemon", null, work, rootfs)) {
      server.ok("open");
      List<String> execProgram = server.execProgram();
      // Forked twice, in a session of its own, without the command's descriptors, deaf to
      // all but SIGKILL. Busybox runs applets by argv[0], so the marker is the script's $0
      // rather than an "exec -a" name; it is put together in the testbed so that only the
      // daemon's command line holds it, not the exec program's.
      int half = marker.length() / 2;
      VirtServerProcess.Job starter =
          server.launch(
              "starter",
              exec(
                  execProgram,
                  "m="
                      + marker.substring(0, half)
                      + "; ( setsid sh -c 'trap \"\" INT TERM HUP; "
                      + "while :; do sleep 1; done' \"${m}"
                      + marker.substring(half)
                      + "\" </dev/null >/dev/null 2>&1 & ); echo started; exec sleep 600"));
      starter.awaitLine("started", JOB_LIMIT);
      Await.until(
          "the daemon " + marker + " to run",
          JOB_LIMIT,
          () -> !SignalFixtures.processesWith(marker).isEmpty(),
          starter::describe);
      System.out.println("[e2e] daemon running: " + SignalFixtures.processesWith(marker));
      assertEquals("state=open jobs=1 interrupts=0", server.ok("status"));

      long closing = System.nanoTime();
      assertEquals("ok", server.request("close", CLOSE_LIMIT), server.describe());
      SignalFixtures.report(
          "daemon",
          "close with a daemon ignoring INT, TERM and HUP",
          Duration.ofNanos(System.nanoTime() - closing));
      assertEquals(List.of(), SignalFixtures.processesWith(marker), "the daemon outlived close");
      assertEquals("exit 130", starter.awaitStatus(JOB_LIMIT), starter.describe());
      assertFalse(Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS), rootfs + " survived close");

      server.send("quit");
      assertEquals("exit 0", server.awaitServerExit(JOB_LIMIT), server.describe());
      assertEquals(
          List.of(), SignalFixtures.processesWith(marker), "the daemon outlived the server");
    }
  }

  private VirtServerProcess start(String name, String user, Path work, Path rootfs)
      throws IOException {
    List<String> args =
        new java.util.ArrayList<>(
            List.of("-t", SignalFixtures.busyboxTarball().toString(), "-u", rootfs.toString()));
    args.addAll(SHORT_GRACE);
    return VirtServerProcess.start(
        name, user, work.resolve("group"), SignalFixtures.environment(work, user, leaks), args);
  }
}
