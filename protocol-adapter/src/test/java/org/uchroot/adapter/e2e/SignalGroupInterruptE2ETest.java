package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.uchroot.adapter.e2e.VirtServerProcess.exec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.LeakCheck;

/**
 * A client that does not setsid the server (unlike sbuild, which works around Debian bug #844459
 * that way): a SIGINT to the process group it shares with the server, such as a terminal's Ctrl+C,
 * interrupts the running commands but leaves the testbed to the client, which cleans up through it
 * and then closes it.
 */
@Tag("e2e")
class SignalGroupInterruptE2ETest {

  private static final Duration JOB_LIMIT = Duration.ofSeconds(30);
  private static final Pattern SIGINT_LINE = Pattern.compile("SIGINT");

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void ctrlCToTheGroupInterruptsCommandsAndKeepsTheTestbed(E2e.Caller caller) throws IOException {
    ctrlCToTheGroup(caller.user());
  }

  private void ctrlCToTheGroup(String user) throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("perl", "runuser", "mkfifo");
    String who = SignalFixtures.who(user);
    Path work = SignalFixtures.workDir(tempDir, user);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    leaks.watch(work.resolve("tmp"));
    Map<String, String> env = SignalFixtures.environment(work, user, leaks);

    try (VirtServerProcess server =
        VirtServerProcess.start(
            "signal-group-" + who,
            user,
            work.resolve("group"),
            env,
            List.of("-t", SignalFixtures.busyboxTarball().toString(), "-u", rootfs.toString()))) {
      String capabilities = server.ok("capabilities");
      assertTrue(
          capabilities.matches("(.* )?uchroot-status( .*)?")
              && capabilities.matches("(.* )?uchroot-interrupt( .*)?"),
          "extensions not advertised: " + capabilities);
      server.ok("open");
      assertTrue(Files.isDirectory(rootfs), "no rootfs at " + rootfs);
      List<String> execProgram = server.execProgram();
      Path socket = Path.of(execProgram.get(execProgram.size() - 1));

      VirtServerProcess.Job loop =
          server.launch(
              "loop",
              exec(execProgram, "echo started; while :; do echo tick >> /loop; sleep 0.1; done"));
      loop.awaitLine("started", JOB_LIMIT);
      assertEquals("state=open jobs=1 interrupts=0", server.ok("status"));

      long sent = System.nanoTime();
      server.signalGroup(VirtServerProcess.SIGINT);
      String loopStatus = loop.awaitStatus(JOB_LIMIT);
      Duration interrupted = Duration.ofNanos(System.nanoTime() - sent);
      SignalFixtures.report(
          "group SIGINT " + who, "SIGINT to the exec program's exit", interrupted);
      assertEquals(
          "exit 130", loopStatus, "the interrupted command's exec program\n" + loop.describe());
      String logged = server.awaitStderr(SIGINT_LINE, JOB_LIMIT);
      System.out.println("[e2e] server's line on SIGINT: " + logged);
      assertNull(server.serverStatus(), "the server ended on SIGINT\n" + server.describe());

      String status = server.ok("status");
      assertTrue(
          status.matches("state=interrupted jobs=0 interrupts=[1-9][0-9]*"),
          "status after the interrupt: " + status + "\n" + server.describe());

      // The client's own cleanup, as sbuild's would be: the testbed is still whole.
      VirtServerProcess.Job cleanup =
          server.run(
              "cleanup", execProgram, "test -s /loop && rm /loop && echo cleaned", JOB_LIMIT);
      assertEquals("exit 0", cleanup.status(), cleanup.describe());
      assertEquals("cleaned\n", cleanup.stdout(), cleanup.describe());
      Path copy = work.resolve("passwd-from-testbed");
      server.ok("copyup /etc/passwd " + copy);
      assertTrue(
          Files.readString(copy).startsWith("root:"),
          "copyup after the interrupt: " + Files.readString(copy));

      long closing = System.nanoTime();
      server.ok("close");
      SignalFixtures.report(
          "group SIGINT " + who,
          "close to ok (rootfs removed)",
          Duration.ofNanos(System.nanoTime() - closing));
      assertFalse(Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS), rootfs + " survived close");
      assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), socket + " survived close");
      assertEquals("state=closed jobs=0 interrupts=0", server.ok("status"));

      server.send("quit");
      assertEquals("exit 0", server.awaitServerExit(JOB_LIMIT), server.describe());
    }
  }

  /**
   * SIGINT to the server alone, as {@code kill -INT}: its commands are interrupted, it serves on.
   */
  @Test
  void sigintToTheServerAloneInterruptsItsCommands() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("perl", "mkfifo");
    Path work = SignalFixtures.workDir(tempDir, null);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    leaks.watch(work.resolve("tmp"));

    try (VirtServerProcess server =
        VirtServerProcess.start(
            "signal-server-sigint",
            null,
            work.resolve("group"),
            SignalFixtures.environment(work, null, leaks),
            List.of("-t", SignalFixtures.busyboxTarball().toString(), "-u", rootfs.toString()))) {
      server.ok("open");
      List<String> execProgram = server.execProgram();
      VirtServerProcess.Job first =
          server.launch("first", exec(execProgram, "echo started; exec sleep 600"));
      VirtServerProcess.Job second =
          server.launch("second", exec(execProgram, "echo started; while :; do sleep 1; done"));
      first.awaitLine("started", JOB_LIMIT);
      second.awaitLine("started", JOB_LIMIT);

      long sent = System.nanoTime();
      server.signalServer(VirtServerProcess.SIGINT);
      assertEquals("exit 130", first.awaitStatus(JOB_LIMIT), first.describe());
      assertEquals("exit 130", second.awaitStatus(JOB_LIMIT), second.describe());
      SignalFixtures.report(
          "server SIGINT",
          "SIGINT to both exec programs' exits",
          Duration.ofNanos(System.nanoTime() - sent));
      server.awaitStderr(SIGINT_LINE, JOB_LIMIT);
      assertTrue(
          server.ok("status").matches("state=interrupted jobs=0 interrupts=[1-9][0-9]*"),
          server.describe());

      VirtServerProcess.Job after = server.run("after", execProgram, "echo still here", JOB_LIMIT);
      assertEquals("exit 0", after.status(), after.describe());
      server.ok("close");
      assertFalse(Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS), rootfs + " survived close");
      server.send("quit");
      assertEquals("exit 0", server.awaitServerExit(JOB_LIMIT), server.describe());
    }
  }

  /**
   * A second SIGINT before the escalation of the first is over kills the commands at once: here a
   * command that ignores SIGINT and SIGTERM, with grace periods of an hour, ends within the test's
   * limit, and each SIGINT says on stderr what it did and what comes next.
   */
  @Test
  void aSecondSigintKillsTheCommandsAtOnce() throws IOException {
    E2e.requireRoot();
    Path work = SignalFixtures.workDir(tempDir, null);
    leaks.watch(work.resolve("tmp"));
    try (VirtServerProcess server =
        VirtServerProcess.start(
            "signal-server-sigint-twice",
            null,
            work.resolve("group"),
            SignalFixtures.environment(work, null, leaks),
            List.of(
                "-t",
                SignalFixtures.busyboxTarball().toString(),
                "--grace-before-term",
                "1h",
                "--grace-before-kill",
                "1h"))) {
      server.ok("open");
      List<String> execProgram = server.execProgram();
      VirtServerProcess.Job stubborn =
          server.launch(
              "stubborn",
              exec(execProgram, "trap '' INT TERM; echo started; while :; do sleep 1; done"));
      stubborn.awaitLine("started", JOB_LIMIT);

      server.signalServer(VirtServerProcess.SIGINT);
      server.awaitStderr(
          Pattern.compile(
              "SIGINT: interrupted 1 running command\\(s\\) in testbed \\S+;"
                  + " it stays open; SIGTERM in 3600s, kill in 7200s; Ctrl\\+C again to kill now"),
          JOB_LIMIT);
      server.signalServer(VirtServerProcess.SIGINT);
      assertEquals("exit 137", stubborn.awaitStatus(JOB_LIMIT), stubborn.describe());
      server.awaitStderr(
          Pattern.compile("SIGINT again: killed 1 running command\\(s\\)"), JOB_LIMIT);

      VirtServerProcess.Job after = server.run("after", execProgram, "echo still here", JOB_LIMIT);
      assertEquals("exit 0", after.status(), after.describe());
      server.ok("close");
    }
  }

  /**
   * SIGINT, SIGTERM or SIGHUP to one exec program interrupts its command alone, the same way
   * whatever the signal (SIGINT first, see the exec relay in docs/protocol.md): the exec program
   * exits 130, and the testbed and its other commands carry on.
   */
  @Test
  void aSignalToOneExecProgramReachesOnlyItsCommand() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("perl", "mkfifo");
    Path work = SignalFixtures.workDir(tempDir, null);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    leaks.watch(work.resolve("tmp"));

    try (VirtServerProcess server =
        VirtServerProcess.start(
            "signal-exec-program",
            null,
            work.resolve("group"),
            SignalFixtures.environment(work, null, leaks),
            List.of("-t", SignalFixtures.busyboxTarball().toString(), "-u", rootfs.toString()))) {
      server.ok("open");
      List<String> execProgram = server.execProgram();
      VirtServerProcess.Job bystander =
          server.launch("bystander", exec(execProgram, "echo started; exec sleep 600"));
      bystander.awaitLine("started", JOB_LIMIT);
      for (int signal :
          new int[] {
            VirtServerProcess.SIGINT, VirtServerProcess.SIGTERM, VirtServerProcess.SIGHUP
          }) {
        VirtServerProcess.Job target =
            server.launch(
                "signal-" + signal, exec(execProgram, "echo started; while :; do sleep 1; done"));
        target.awaitLine("started", JOB_LIMIT);
        target.signal(signal);
        assertEquals(
            "exit 130",
            target.awaitStatus(JOB_LIMIT),
            "the exec program got signal " + signal + "\n" + target.describe());
      }
      assertNull(bystander.status(), "the other command ended\n" + bystander.describe());
      String status = server.ok("status");
      assertTrue(
          status.startsWith("state=") && status.contains(" jobs=1 "),
          status + "\n" + server.describe());

      server.ok("close");
      assertEquals("exit 130", bystander.awaitStatus(JOB_LIMIT), bystander.describe());
      assertFalse(Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS), rootfs + " survived close");
      server.send("quit");
      assertEquals("exit 0", server.awaitServerExit(JOB_LIMIT), server.describe());
    }
  }

  /**
   * The interrupt reaches every process of the command, also one that left the command's session,
   * as {@code su -c} does with the shell it runs (autopkgtest runs tests that way). The grace
   * periods are long, so only SIGINT itself can make the inner command speak in time.
   */
  @Test
  void theInterruptReachesAProcessInAnotherSessionOfTheCommand() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("perl", "mkfifo");
    Path work = SignalFixtures.workDir(tempDir, null);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    leaks.watch(work.resolve("tmp"));

    try (VirtServerProcess server =
        VirtServerProcess.start(
            "signal-tree",
            null,
            work.resolve("group"),
            SignalFixtures.environment(work, null, leaks),
            List.of(
                "-t",
                SignalFixtures.busyboxTarball().toString(),
                "-u",
                rootfs.toString(),
                "--grace-before-term",
                "10s",
                "--grace-before-kill",
                "10s"))) {
      server.ok("open");
      List<String> execProgram = server.execProgram();
      VirtServerProcess.Job job =
          server.launch(
              "new-session",
              exec(
                  execProgram,
                  "setsid sh -c 'trap \"echo inner got INT\" INT; echo started; sleep 600; echo inner ended'"));
      job.awaitLine("started", JOB_LIMIT);
      assertEquals("jobs=1", server.ok("interrupt"), server.describe());
      // Shorter than the first grace period: SIGTERM or the kill would end it silently.
      job.awaitLine("inner got INT", Duration.ofSeconds(8));
      job.awaitStatus(JOB_LIMIT);
      server.ok("close");
      assertFalse(Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS), rootfs + " survived close");
      server.send("quit");
      assertEquals("exit 0", server.awaitServerExit(JOB_LIMIT), server.describe());
    }
  }
}
