package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.LeakCheck;

/**
 * No helper of the server (the unpack's shell and tar, the job server) outlives it, however it ends
 * during an open, a revert or a close; SIGTERM aborts an open at once and leaves nothing; a Ctrl+C
 * reaches no helper and no later command. The work is held at a named point by the engine's
 * test-only hook ({@link FaultHold}), so the signals come there, not after a guessed delay.
 */
@Tag("e2e")
class HelperLifetimeE2ETest {

  private static final Duration LIMIT = Duration.ofSeconds(60);

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void aServerKilledDuringAnOpenLeavesNoHelper(E2e.Caller caller) throws IOException {
    killedDuringAnOpen(caller.user());
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void sigtermAbortsAnOpenAndLeavesNothing(E2e.Caller caller) throws IOException {
    terminatedDuringAnOpen(caller.user());
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void aCtrlCWhileHelpersAreSpawnedLeavesThemAlive(E2e.Caller caller) throws IOException {
    ctrlCDuringSpawns(caller.user());
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void aCtrlCDuringARevertReachesNoLaterCommand(E2e.Caller caller) throws IOException {
    ctrlCDuringARevert(caller.user());
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void sigtermDuringARevertEndsTheServerAndLeavesNothing(E2e.Caller caller) throws IOException {
    terminatedDuringARevert(caller.user());
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void aServerKilledWhileItRemovesATestbedLeavesItToCleanup(E2e.Caller caller) throws IOException {
    killedDuringARemoval(caller.user());
  }

  /**
   * Each helper of an open is held where a spawned process is still in the server's process group,
   * and the group gets a Ctrl+C there: every helper lives on, and the open succeeds.
   */
  private void ctrlCDuringSpawns(String user) throws IOException {
    E2e.requireRoot();
    Path work = work(user);
    FaultHold hold = FaultHold.at("spawn", work, user);
    try (VirtServerProcess server = start("ctrl-c-spawn", user, work, hold)) {
      server.send("open");
      int held = answerReleasingHolds(server, hold, () -> server.signalGroup(2), "open");
      assertTrue(held >= 2, "the open's helpers were not held: " + held);
      VirtServerProcess.Job job = server.run("after", server.execProgram(), "echo alive", LIMIT);
      assertEquals("alive\n", job.stdout(), job.describe());
      server.ok("close");
    }
  }

  /**
   * A Ctrl+C while a revert makes the fresh testbed (held at a spawn of it) interrupts nothing that
   * comes after: the next command runs to its end.
   */
  private void ctrlCDuringARevert(String user) throws IOException {
    E2e.requireRoot();
    Path work = work(user);
    FaultHold hold = FaultHold.at("spawn", work, user);
    try (VirtServerProcess server = start("ctrl-c-revert", user, work, hold)) {
      server.send("open");
      answerReleasingHolds(server, hold, () -> {}, "open");
      List<String> exec = server.execProgram();
      server.send("revert");
      int[] signalled = {0};
      int held =
          answerReleasingHolds(
              server,
              hold,
              () -> {
                if (signalled[0]++ == 0) {
                  server.signalGroup(2);
                }
              },
              "revert");
      assertTrue(held >= 1, "the revert's helpers were not held");
      VirtServerProcess.Job job = server.run("after-revert", exec, "echo alive", LIMIT);
      assertEquals("exit 0", job.status(), job.describe());
      assertEquals("alive\n", job.stdout(), job.describe());
      server.ok("close");
    }
  }

  /** SIGTERM while a revert makes the fresh testbed: the server ends, and nothing is left. */
  private void terminatedDuringARevert(String user) throws IOException {
    E2e.requireRoot();
    Path work = work(user);
    FaultHold hold = FaultHold.at("spawn", work, user);
    try (VirtServerProcess server = start("terminated-revert", user, work, hold)) {
      server.send("open");
      answerReleasingHolds(server, hold, () -> {}, "open");
      server.send("revert");
      Await.until("the revert to reach a spawn", LIMIT, hold::reached, server::describe);
      server.signalServer(15);
      // Let every helper on: one whose server is gone ends by itself.
      while (server.serverStatus() == null) {
        if (hold.takeReached()) {
          hold.release();
        }
        server.pollAnswer(Duration.ofMillis(20));
      }
      hold.awaitNoHelper();
    }
    assertNothingLeft(work);
  }

  /**
   * A server killed while the job server removes its testbed at a close (held there): no helper is
   * left, and {@code sessions cleanup --orphaned} removes the rest of the testbed.
   */
  private void killedDuringARemoval(String user) throws IOException {
    E2e.requireRoot();
    Path work = work(user);
    FaultHold hold = FaultHold.at("remove", work, user);
    try (VirtServerProcess server = start("killed-removal", user, work, hold)) {
      server.ok("open");
      server.send("close");
      Await.until("the close to reach the removal", LIMIT, hold::reached, server::describe);
      server.signalServer(9);
      assertEquals("signal 9", server.awaitServerExit(LIMIT));
      hold.awaitNoHelper();
    }
    try (Stream<Path> left = Files.list(work.resolve("tmp"))) {
      assertEquals(1, left.count(), "the testbed whose removal was held is not there");
    }
    E2e.Result cleanup = cleanup(work, user);
    assertTrue(cleanup.output.contains("removed "), cleanup.output);
    assertNothingLeft(work);
  }

  private void killedDuringAnOpen(String user) throws IOException {
    E2e.requireRoot();
    Path work = work(user);
    signalDuringAHeldUnpack("killed", user, work, 9);
    List<Path> left = partialBases(work);
    assertEquals(1, left.size(), "the killed unpack left no partial base: " + left);
    // sessions cleanup removes it, as the next open of the tarball would.
    E2e.Result cleanup = cleanup(work, user);
    assertTrue(cleanup.output.contains("removed " + left.get(0)), cleanup.output);
    assertEquals(List.of(), partialBases(work));
    try (VirtServerProcess server = start("after-kill", user, work, null)) {
      server.ok("open");
      server.ok("close");
    }
  }

  private void terminatedDuringAnOpen(String user) throws IOException {
    E2e.requireRoot();
    Path work = work(user);
    assertEquals("signal 15", signalDuringAHeldUnpack("terminated", user, work, 15));
    assertEquals(List.of(), partialBases(work), "the aborted unpack left its partial base");
    assertNothingLeft(work);
  }

  /**
   * Sends {@code signal} to a server whose open is held in its unpack; waits until the server and
   * every helper of the unpack are gone. Returns how the server ended.
   */
  private String signalDuringAHeldUnpack(String name, String user, Path work, int signal)
      throws IOException {
    FaultHold hold = FaultHold.at("unpack", work, user);
    try (VirtServerProcess server = start(name, user, work, hold)) {
      server.send("open");
      Await.until("the unpack to reach its hold", LIMIT, hold::reached, server::describe);
      assertFalse(hold.helpers().isEmpty(), "no helper holds the unpack");
      server.signalServer(signal);
      String status = server.awaitServerExit(LIMIT);
      hold.awaitNoHelper();
      return status;
    }
  }

  /**
   * Waits for the answer to {@code request}, letting each helper that reaches the hold go on after
   * {@code atEachHold} ran; fails unless the answer is ok. Returns how many were held.
   */
  private static int answerReleasingHolds(
      VirtServerProcess server, FaultHold hold, Runnable atEachHold, String request)
      throws IOException {
    int held = 0;
    Optional<String> answer = Optional.empty();
    long deadline = System.nanoTime() + LIMIT.toNanos();
    while (answer.isEmpty() && System.nanoTime() < deadline) {
      if (hold.takeReached()) {
        atEachHold.run();
        held++;
        hold.release();
      }
      answer = server.pollAnswer(Duration.ofMillis(20));
    }
    assertTrue(
        answer.isPresent() && answer.get().startsWith("ok"),
        request
            + " answered "
            + answer
            + " after "
            + held
            + " held helper(s)\n"
            + server.describe());
    return held;
  }

  private E2e.Result cleanup(Path work, String user) throws IOException {
    E2e.Result cleanup =
        E2e.run(
            "sessions-cleanup-" + SignalFixtures.who(user),
            user,
            work,
            environment(work, user, null),
            LIMIT,
            List.of(
                E2e.distributionDir().resolve("bin/uchroot").toString(),
                "sessions",
                "cleanup",
                "--orphaned"));
    assertEquals(0, cleanup.exitCode, cleanup.output);
    return cleanup;
  }

  private static void assertNothingLeft(Path work) throws IOException {
    try (Stream<Path> left = Files.list(work.resolve("tmp"))) {
      assertEquals(List.of(), left.toList(), "a testbed is left");
    }
  }

  private Path work(String user) throws IOException {
    Path work = SignalFixtures.workDir(tempDir, user);
    // The testbed's root of a root session, an unprivileged id, must reach the hold's FIFO.
    for (Path dir : List.of(tempDir, work)) {
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
    }
    return work;
  }

  private VirtServerProcess start(String name, String user, Path work, FaultHold hold)
      throws IOException {
    return VirtServerProcess.start(
        name,
        user,
        work.resolve("group-" + name),
        environment(work, user, hold),
        List.of("--rootfs-mode", "overlay", "-t", SignalFixtures.busyboxTarball().toString()));
  }

  /** The test's own state and cache directories, the hold if any, and the leak check's tag. */
  private Map<String, String> environment(Path work, String user, FaultHold hold) {
    Map<String, String> env = SignalFixtures.environment(work, user, leaks);
    String options = env.get("UCHROOT_JAVA_OPTS") + " -Duchroot.cache-dir=" + work.resolve("cache");
    if (hold != null) {
      options += " " + hold.javaOption();
    }
    env.put("UCHROOT_JAVA_OPTS", options);
    // The helpers under test are a server's own; the shared engine's end is SharedEngineE2ETest's.
    env.put("UCHROOT_ENGINE", "standalone");
    return env;
  }

  private static List<Path> partialBases(Path work) throws IOException {
    Path cache = work.resolve("cache");
    if (!Files.isDirectory(cache)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(cache)) {
      return files.filter(p -> p.getFileName().toString().contains(".partial-")).toList();
    }
  }
}
