package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.actors.BindMount;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.RootfsMode;
import org.uchroot.actors.SessionSpec;

/** Real namespaces on a real (busybox) rootfs, through the embedding API, in each rootfs mode. */
@Tag("integration")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class EngineIntegrationCases {

  /** Every test ends with its testbeds gone: no mount, process or directory of theirs is left. */
  @RegisterExtension final LeakCheck leaks = new LeakCheck();

  private Engine engine;

  abstract RootfsMode mode();

  @BeforeAll
  void startEngine() throws Exception {
    // Made before the leak check's first look: the fixture stays for every test.
    BusyboxRootfs.tarball();
    engine = Engine.start(EngineConfig.load().withRootfsMode(mode()));
  }

  @AfterAll
  void stopEngine() {
    engine.close();
  }

  private Session open() throws Exception {
    return engine.open(SessionSpec.of(BusyboxRootfs.tarball())).toCompletableFuture().join();
  }

  private static ExitStatus run(Session session, CapturedStdio io, String... argv) {
    return session.run(List.of(argv), io).toCompletableFuture().join();
  }

  @Test
  void runsCommandsAndPassesExitStatuses() throws Exception {
    Session session = open();
    try {
      assertEquals(new ExitStatus.Exited(0), run(session, new CapturedStdio(), "true"));
      assertEquals(
          new ExitStatus.Exited(7), run(session, new CapturedStdio(), "sh", "-c", "exit 7"));
      assertEquals(
          new ExitStatus.Signalled(15),
          run(session, new CapturedStdio(), "sh", "-c", "kill -TERM $$"));
      CapturedStdio missing = new CapturedStdio();
      assertEquals(new ExitStatus.Exited(127), run(session, missing, "no-such-command"));
      assertTrue(missing.err().contains("no-such-command"), missing.err());
    } finally {
      session.close().toCompletableFuture().join();
    }
  }

  @Test
  void commandsSeeACleanRootedEnvironment() throws Exception {
    Session session = open();
    try {
      CapturedStdio io = new CapturedStdio("piped\n");
      run(session, io, "sh", "-c", "pwd; env; id -u; cat; test -c /dev/null && echo devnull");
      List<String> lines = io.out().lines().toList();
      assertEquals("/", lines.get(0));
      assertTrue(lines.contains("PATH=/usr/sbin:/usr/bin:/sbin:/bin"), io.out());
      assertTrue(lines.contains("0"), io.out());
      assertTrue(lines.contains("piped"), io.out());
      assertTrue(lines.contains("devnull"), io.out());
      assertFalse(io.out().contains("HOME="), io.out());
      assertTrue(Files.isDirectory(session.scratchOnHost()));
      assertEquals(
          new ExitStatus.Exited(0),
          run(session, new CapturedStdio(), "test", "-d", "/home/uchroot"));
    } finally {
      session.close().toCompletableFuture().join();
    }
  }

  @Test
  void theTestbedIsMadeInTheRequestedMode() throws Exception {
    Session session = open();
    try {
      Path upper = session.rootfs().resolve("upper");
      // The scratch directory is a host directory beside the rootfs in both modes, not a
      // directory of the overlay's upper layer written behind the overlay's back.
      assertEquals(session.rootfs().resolve("scratch"), session.scratchOnHost());
      assertEquals(mode() == RootfsMode.OVERLAY, Files.isDirectory(upper));
      if (mode() == RootfsMode.OVERLAY) {
        // The base holds /dev as the job server completes it: nothing of it is copied up.
        try (Stream<Path> entries = Files.list(upper)) {
          assertEquals(List.of(upper.resolve("tmp")), entries.toList());
        }
      }
    } finally {
      session.close().toCompletableFuture().join();
    }
  }

  /**
   * autopkgtest writes into downtmp-host on the host while the testbed runs: a name the testbed
   * looked up before the host made it must then be there, with what the host wrote.
   */
  @Test
  void theHostWritesTheScratchDirectoryAsThePlainDirectoryItIs() throws Exception {
    Session session = open();
    try {
      String late = session.scratch() + "/late";
      assertEquals(new ExitStatus.Exited(1), run(session, new CapturedStdio(), "test", "-e", late));
      Files.writeString(session.scratchOnHost().resolve("late"), "written on the host\n");
      CapturedStdio io = new CapturedStdio();
      assertEquals(new ExitStatus.Exited(0), run(session, io, "cat", late));
      assertEquals("written on the host\n", io.out());
      assertEquals(
          new ExitStatus.Exited(0),
          run(session, new CapturedStdio(), "sh", "-c", "echo in the testbed > " + late));
      assertEquals("in the testbed\n", Files.readString(session.scratchOnHost().resolve("late")));
    } finally {
      session.close().toCompletableFuture().join();
    }
  }

  @Test
  void aRevertGivesAFreshEmptyScratchDirectoryAtTheSamePaths() throws Exception {
    Session session = open();
    try {
      String scratch = session.scratch();
      Path onHost = session.scratchOnHost();
      Files.writeString(onHost.resolve("old"), "x");
      session.revert().toCompletableFuture().join();
      assertEquals(scratch, session.scratch());
      assertEquals(onHost, session.scratchOnHost());
      try (Stream<Path> entries = Files.list(onHost)) {
        assertEquals(List.of(), entries.toList());
      }
      CapturedStdio io = new CapturedStdio();
      run(session, io, "stat", "-c", "%a", scratch);
      assertEquals("1777", io.out().strip());
    } finally {
      session.close().toCompletableFuture().join();
    }
  }

  @Test
  void outputOfBackgroundWritersIsNotCutOff() throws Exception {
    Session session = open();
    try {
      CapturedStdio io = new CapturedStdio();
      run(session, io, "sh", "-c", "(sleep 1; echo late) & echo early");
      assertEquals(List.of("early", "late"), io.out().lines().toList());
    } finally {
      session.close().toCompletableFuture().join();
    }
  }

  @Test
  void closeRemovesTheRootfsAndLeavesNoMount() throws Exception {
    Session session = open();
    Path rootfs = session.rootfs();
    run(session, new CapturedStdio(), "touch", session.scratch() + "/made-here");
    assertTrue(Files.exists(session.scratchOnHost().resolve("made-here")));
    session.close().toCompletableFuture().join();
    assertFalse(Files.exists(rootfs));
    assertTrue(MountTable.mountsAtOrBelow(rootfs).isEmpty());
  }

  /**
   * When a close is answered, the testbed's files and record are gone; its processes end before its
   * engine does.
   */
  @Test
  void aClosedTestbedIsGoneWhenAnsweredAndItsProcessesBeforeItsEngineEnds() throws Exception {
    ProcessHandle jobServer;
    try (Engine own = Engine.start(EngineConfig.load().withRootfsMode(mode()))) {
      Session session =
          own.open(SessionSpec.of(BusyboxRootfs.tarball())).toCompletableFuture().join();
      Path rootfs = session.rootfs();
      jobServer = SessionProcesses.jobServerOf(rootfs);
      assertTrue(recorded(rootfs), rootfs + " is not recorded");
      session.closeAndWait();
      assertFalse(recorded(rootfs), "the registry still records " + rootfs);
      assertFalse(Files.exists(rootfs));
    }
    assertFalse(jobServer.isAlive(), "the job server outlived its engine");
  }

  /** The job server died (killed here) before it could remove the testbed: the remover does. */
  @Test
  void closeRemovesWhatTheJobServerLeft() throws Exception {
    Session session = open();
    Path rootfs = session.rootfs();
    run(session, new CapturedStdio(), "touch", "/made-here", session.scratch() + "/made-here");
    ProcessHandle jobServer = SessionProcesses.jobServerOf(rootfs);
    jobServer.destroyForcibly();
    jobServer.onExit().get(30, TimeUnit.SECONDS);
    assertTrue(Files.isDirectory(rootfs));

    session.closeAndWait();
    assertFalse(Files.exists(rootfs));
    assertTrue(MountTable.mountsAtOrBelow(rootfs).isEmpty());
    assertFalse(recorded(rootfs), "the registry still records " + rootfs);
  }

  /**
   * A job server that neither removes the testbed nor ends (stopped here) is killed after ten
   * seconds, and the remover removes the testbed.
   */
  @Test
  @Timeout(60)
  void closeKillsAJobServerThatDoesNotEnd() throws Exception {
    Session session = open();
    Path rootfs = session.rootfs();
    ProcessHandle jobServer = SessionProcesses.jobServerOf(rootfs);
    Process stop = new ProcessBuilder("kill", "-STOP", Long.toString(jobServer.pid())).start();
    assertEquals(0, stop.waitFor());

    session.closeAndWait();
    assertFalse(jobServer.isAlive(), "the job server still runs");
    assertFalse(Files.exists(rootfs));
    assertTrue(MountTable.mountsAtOrBelow(rootfs).isEmpty());
    assertFalse(recorded(rootfs), "the registry still records " + rootfs);
  }

  private boolean recorded(Path rootfs) {
    return SessionRegistry.of(engine.config()).list().stream()
        .anyMatch(entry -> entry.rootfs().equals(rootfs));
  }

  @Test
  void revertKeepsTheScratchPathAndForgetsChanges() throws Exception {
    Session session = open();
    try {
      String scratch = session.scratch();
      run(session, new CapturedStdio(), "touch", "/made-here");
      session.revert().toCompletableFuture().join();
      // The record of the testbed reverted is forgotten, never the new one's.
      assertTrue(recorded(session.rootfs()), "the new testbed is not recorded");
      assertEquals(scratch, session.scratch());
      assertTrue(Files.isDirectory(session.scratchOnHost()));
      assertEquals(
          new ExitStatus.Exited(1), run(session, new CapturedStdio(), "test", "-e", "/made-here"));
    } finally {
      session.close().toCompletableFuture().join();
    }
  }

  /**
   * A tarball whose /mnt/escape is a symlink to an absolute path that exists on the host too: a
   * mount point made through it must land inside the rootfs, as in a chroot, and never touch the
   * host directory of the same name.
   */
  @Test
  void mountPointsAreResolvedInsideTheRootfs(@TempDir Path temp) throws Exception {
    Path hostTarget = Files.createDirectories(temp.resolve("host-target"));
    Files.writeString(hostTarget.resolve("sentinel"), "host\n");
    Path stage = Files.createDirectories(temp.resolve("stage"));
    sh(
        "tar -xf \"$1\" -C \"$2\" && mkdir -p \"$2/mnt\" \"$2$3\" && ln -s \"$3\" \"$2/mnt/escape\""
            + " && tar -cf \"$4\" -C \"$2\" .",
        BusyboxRootfs.tarball().toString(),
        stage.toString(),
        hostTarget.toString(),
        temp.resolve("escape.tar").toString());
    Path bound = Files.createDirectories(temp.resolve("bound"));
    Files.writeString(bound.resolve("marker"), "bound\n");

    SessionSpec spec =
        new SessionSpec(
            temp.resolve("escape.tar"),
            List.of(new BindMount(bound, "/mnt/escape/sub")),
            Optional.empty(),
            Optional.empty(),
            "uchroot");
    Session session = engine.open(spec).toCompletableFuture().join();
    try {
      CapturedStdio io = new CapturedStdio();
      assertEquals(
          new ExitStatus.Exited(0),
          run(session, io, "cat", hostTarget + "/sub/marker", "/mnt/escape/sub/marker"));
      assertEquals("bound\nbound\n", io.out());
      try (Stream<Path> entries = Files.list(hostTarget)) {
        assertEquals(List.of(hostTarget.resolve("sentinel")), entries.toList());
      }
      assertTrue(MountTable.mountsAtOrBelow(hostTarget).isEmpty());
    } finally {
      session.close().toCompletableFuture().join();
    }
  }

  private static void sh(String script, String... args) throws IOException, InterruptedException {
    List<String> argv = new ArrayList<>(List.of("sh", "-c", script, "sh"));
    argv.addAll(List.of(args));
    Process p = new ProcessBuilder(argv).inheritIO().start();
    assertEquals(0, p.waitFor(), "sh -c " + script);
  }
}
