package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
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
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.actors.BindMount;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.GracePeriods;
import org.uchroot.actors.RootfsMode;
import org.uchroot.actors.SessionSpec;

/** Interrupts keep the testbed usable; closing ends every process and deletes only the rootfs. */
@Tag("integration")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class InterruptIntegrationCases {

  /** Every test ends with its testbeds gone: no mount, process or directory of theirs is left. */
  @RegisterExtension final LeakCheck leaks = new LeakCheck();

  private Engine engine;

  abstract RootfsMode mode();

  @BeforeAll
  void startEngine() throws Exception {
    // Made before the leak check's first look: the fixture stays for every test.
    BusyboxRootfs.tarball();
    engine =
        Engine.start(
            EngineConfig.load()
                .withRootfsMode(mode())
                .withGrace(new GracePeriods(Duration.ofSeconds(1), Duration.ofSeconds(1))));
  }

  @AfterAll
  void stopEngine() {
    engine.close();
  }

  private Session open(List<BindMount> binds) throws Exception {
    SessionSpec spec =
        new SessionSpec(
            BusyboxRootfs.tarball(), binds, Optional.empty(), Optional.empty(), "uchroot");
    return engine.open(spec).toCompletableFuture().join();
  }

  /** Blocks until the job has written {@code marker} into its stdout, proving it runs. */
  private static void awaitOutput(CapturedStdio io, String marker) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!io.out().contains(marker)) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("job never printed " + marker + "; stderr: " + io.err());
      }
      Thread.sleep(20);
    }
  }

  @Test
  void interruptEndsTheJobButKeepsTheTestbedOpen() throws Exception {
    Session session = open(List.of());
    try {
      CapturedStdio io = new CapturedStdio();
      Job job =
          session.start(
              List.of("sh", "-c", "echo running; while :; do echo x >> /loop; sleep 0.1; done"),
              io);
      awaitOutput(io, "running");
      assertEquals(1, session.interrupt().toCompletableFuture().join());
      assertEquals(new ExitStatus.Signalled(2), job.result().toCompletableFuture().join());
      SessionStatus status = session.status().toCompletableFuture().join();
      assertEquals(SessionStatus.State.INTERRUPTED, status.state());
      assertEquals(0, status.runningJobs());
      assertEquals(1, status.interrupts());
      CapturedStdio cleanup = new CapturedStdio();
      assertEquals(
          new ExitStatus.Exited(0),
          session
              .run(List.of("sh", "-c", "test -s /loop && rm /loop && echo cleaned"), cleanup)
              .toCompletableFuture()
              .join());
      assertEquals("cleaned\n", cleanup.out());
    } finally {
      session.close().toCompletableFuture().join();
    }
  }

  @Test
  void aJobIgnoringSignalsIsKilledAfterTheGracePeriods() throws Exception {
    Session session = open(List.of());
    Path rootfs = session.rootfs();
    CapturedStdio io = new CapturedStdio();
    Job job =
        session.start(
            List.of("sh", "-c", "trap '' INT TERM; echo armed; while :; do sleep 1; done"), io);
    awaitOutput(io, "armed");
    long started = System.nanoTime();
    session.close().toCompletableFuture().join();
    long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - started);
    assertEquals(new ExitStatus.Signalled(9), job.result().toCompletableFuture().join());
    assertFalse(Files.exists(rootfs));
    // Not a timing assertion on speed: it proves the escalation ran instead of waiting forever.
    assertTrue(millis >= 2000, "closed after " + millis + " ms, before the grace periods ended");
  }

  @Test
  void nothingADaemonStartedSurvivesTheSession() throws Exception {
    Session session = open(List.of());
    String tag = "uchroot-daemon-" + System.nanoTime();
    CapturedStdio io = new CapturedStdio();
    session.start(
        List.of(
            "sh",
            "-c",
            "setsid sh -c 'sleep 300; : "
                + tag
                + "' </dev/null >/dev/null 2>&1 & "
                + "echo started; exec sleep 300"),
        io);
    awaitOutput(io, "started");
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (processesNamed(tag).isEmpty()) {
      assertTrue(System.nanoTime() < deadline, "the daemon never started");
      Thread.sleep(20);
    }
    session.close().toCompletableFuture().join();
    assertEquals(List.of(), processesNamed(tag));
  }

  @Test
  void closeDeletesOnlyTheRootfsNeverABoundHostDirectory(@TempDir Path host) throws Exception {
    Path shared = Files.createDirectory(host.resolve("shared"));
    List<Path> sentinels = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      sentinels.add(Files.writeString(shared.resolve("sentinel-" + i), "keep " + i));
    }
    Files.createDirectories(shared.resolve("sub/deeper"));
    sentinels.add(Files.writeString(shared.resolve("sub/deeper/sentinel"), "keep deep"));
    Session session = open(List.of(new BindMount(shared, "/srv/shared")));
    Path rootfs = session.rootfs();
    session
        .run(
            List.of(
                "sh",
                "-c",
                "ln -s /srv/shared /link-to-shared; ln -s / /link-to-root; "
                    + "ln -s "
                    + shared
                    + " /link-to-host-path"),
            new CapturedStdio())
        .toCompletableFuture()
        .join();
    CapturedStdio io = new CapturedStdio();
    Job job = session.start(List.of("sh", "-c", "cd /srv/shared && echo inside && sleep 300"), io);
    awaitOutput(io, "inside");
    session.close().toCompletableFuture().join();
    assertEquals(new ExitStatus.Signalled(2), job.result().toCompletableFuture().join());
    assertFalse(Files.exists(rootfs));
    for (Path sentinel : sentinels) {
      assertTrue(Files.isRegularFile(sentinel), sentinel + " was deleted");
    }
    assertEquals("keep deep", Files.readString(shared.resolve("sub/deeper/sentinel")));
  }

  static List<String> processesNamed(String tag) throws IOException {
    List<String> found = new ArrayList<>();
    try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
      for (Path proc : procs.filter(p -> p.getFileName().toString().matches("\\d+")).toList()) {
        try {
          String cmdline = Files.readString(proc.resolve("cmdline")).replace('\0', ' ');
          if (cmdline.contains(tag)) {
            found.add(proc.getFileName() + ": " + cmdline);
          }
        } catch (IOException e) {
          // The process ended while we looked.
        }
      }
    }
    return found;
  }
}
