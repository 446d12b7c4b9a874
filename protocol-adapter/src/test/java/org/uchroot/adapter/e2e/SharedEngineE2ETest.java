package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.uchroot.adapter.e2e.VirtServerProcess.exec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.Host;
import org.uchroot.engine.LeakCheck;

/**
 * The shared engine through the native frontend, as autopkgtest and sbuild run it with {@code
 * --engine=shared}: one engine per user serves every frontend, each frontend's signals reach its
 * own session only, a frontend or an engine that dies leaves nothing behind, and no other user gets
 * in.
 */
@Tag("e2e")
class SharedEngineE2ETest {

  private static final Duration LIMIT = Duration.ofSeconds(60);
  private static final Pattern PID = Pattern.compile("(?m)^pid: (\\d+)$");

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void oneEngineServesFrontendsEachWithItsOwnTestbed(E2e.Caller caller) throws IOException {
    String user = caller.user();
    Fixture fixture = new Fixture(user);
    try (VirtServerProcess first = fixture.frontend("first", "-d");
        VirtServerProcess second = fixture.frontend("second")) {
      String firstScratch = first.ok("open");
      String secondScratch = second.ok("open");
      assertNotEquals(firstScratch, secondScratch);
      VirtServerProcess.Job job =
          first.launch("id", exec(first.execProgram(), "id -u; echo from-the-testbed"));
      job.awaitLine("from-the-testbed", LIMIT);
      assertEquals("exit 0", job.awaitStatus(LIMIT), job.describe());
      String status = fixture.uchroot("status", "engine", "status").output;
      assertTrue(status.contains("frontends: 2"), status);
      long engine = enginePid(status);
      assertNotEquals(first.serverPid(), engine, "the frontend is not the engine");
      // -d is the first frontend's alone, and its debug lines come to its own stderr.
      first.awaitStderr(Pattern.compile("DEBUG .*executing open"), LIMIT);
      assertFalse(second.stderr().contains("DEBUG"), second.describe());

      first.ok("close");
      first.send("quit");
      assertEquals("exit 0", first.awaitServerExit(LIMIT), first.describe());
      second.send("quit");
      assertEquals("exit 0", second.awaitServerExit(LIMIT), second.describe());
      // The idle time of the fixture's engines is two seconds.
      Await.until(
          "the idle engine to end",
          LIMIT,
          () -> ProcessHandle.of(engine).map(p -> !p.isAlive()).orElse(true),
          () -> fixture.uchroot("status-after", "engine", "status").output);
      assertFalse(Files.exists(fixture.socket(), LinkOption.NOFOLLOW_LINKS));
    }
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void ctrlCInOneFrontendInterruptsThatSessionsCommandsOnly(E2e.Caller caller) throws IOException {
    Fixture fixture = new Fixture(caller.user());
    String script = "trap 'echo interrupted; exit 7' INT; echo armed; sleep 30 & wait; echo slept";
    try (VirtServerProcess hit = fixture.frontend("hit");
        VirtServerProcess spared = fixture.frontend("spared")) {
      hit.ok("open");
      spared.ok("open");
      VirtServerProcess.Job hitJob = hit.launch("hit", exec(hit.execProgram(), script));
      VirtServerProcess.Job sparedJob = spared.launch("spared", exec(spared.execProgram(), script));
      hitJob.awaitLine("armed", LIMIT);
      sparedJob.awaitLine("armed", LIMIT);

      // The terminal's Ctrl+C reaches the frontend alone: its job server is in its own session.
      hit.signalServer(VirtServerProcess.SIGINT);
      hitJob.awaitLine("interrupted", LIMIT);
      assertEquals("exit 7", hitJob.awaitStatus(LIMIT), hitJob.describe());
      // Its frontend's stderr says so, as a server of its own would; the other's does not.
      hit.awaitStderr(Pattern.compile("SIGINT: interrupted 1 running command"), LIMIT);
      assertFalse(spared.stderr().contains("SIGINT"), spared.describe());
      assertEquals("state=interrupted jobs=0 interrupts=1", hit.ok("status"));
      assertEquals("state=open jobs=1 interrupts=0", spared.ok("status"));

      // The interrupted testbed stays open and serves the next command.
      VirtServerProcess.Job next = hit.launch("next", exec(hit.execProgram(), "echo again"));
      next.awaitLine("again", LIMIT);
      assertEquals("exit 0", next.awaitStatus(LIMIT), next.describe());

      spared.ok("close");
      assertNotEquals("exit 0", sparedJob.awaitStatus(LIMIT), "close ends the spared command");
      hit.send("quit");
      spared.send("quit");
      assertEquals("exit 0", hit.awaitServerExit(LIMIT), hit.describe());
      assertEquals("exit 0", spared.awaitServerExit(LIMIT), spared.describe());
    } finally {
      fixture.stopEngine();
    }
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void uchrootRunIsServedByTheEngineWithItsStreamsAndStatus(E2e.Caller caller) throws IOException {
    Fixture fixture = new Fixture(caller.user());
    String run =
        "echo from-stdin | UCHROOT_ENGINE=shared uchroot run -d -t "
            + SignalFixtures.busyboxTarball()
            + " -- sh -c 'cat; echo to-stderr >&2; exit 3'";
    E2e.Result ran =
        E2e.run(
            "shared-run-" + SignalFixtures.who(caller.user()),
            caller.user(),
            fixture.work,
            fixture.environment,
            LIMIT,
            List.of("sh", "-c", run));
    assertEquals(3, ran.exitCode, ran.describe());
    assertTrue(ran.output.contains("from-stdin\n"), ran.describe());
    assertTrue(ran.output.contains("to-stderr\n"), ran.describe());
    // Served by the engine, which the run started (and which logs to the state directory):
    // a run of its own starts none, and its frontend says why with -d.
    assertFalse(ran.output.contains("running a server of its own"), ran.describe());
    assertTrue(Files.exists(fixture.work.resolve("state/engine.log")), ran.describe());
    assertEquals(List.of(), fixture.testbeds(), "the run's testbed stays");
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void copiesTakeRelativeHostPathsFromTheFrontendsWorkingDirectory(E2e.Caller caller)
      throws IOException {
    Fixture fixture = new Fixture(caller.user());
    // As autopkgtest gives a .dsc named on its command line; the engine's own directory is /.
    try (VirtServerProcess frontend = fixture.frontend("relative")) {
      Path dir = fixture.work.resolve("frontend-relative");
      E2e.write(dir.resolve("down.txt"), "from the frontend's directory\n");
      String scratch = frontend.ok("open");
      frontend.ok("copydown down.txt " + scratch + "/down.txt");
      frontend.ok("copyup " + scratch + "/down.txt up.txt");
      assertEquals("from the frontend's directory\n", Files.readString(dir.resolve("up.txt")));
      frontend.ok("close");
      frontend.send("quit");
      assertEquals("exit 0", frontend.awaitServerExit(LIMIT), frontend.describe());
    } finally {
      fixture.stopEngine();
    }
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void whereNothingChoosesTheEngineServesUnlessTheConfigurationSaysStandalone(E2e.Caller caller)
      throws IOException {
    Fixture fixture = new Fixture(caller.user());
    String tarball = SignalFixtures.busyboxTarball().toString();
    // No uchroot.conf of the user's yet.
    fixture.environment.put("XDG_CONFIG_HOME", fixture.work.resolve("config").toString());
    // The engines here stay until the test stops them: it asks a running one between frontends.
    fixture.environment.merge(
        "UCHROOT_JAVA_OPTS", " -Duchroot.engine.idle-timeout=10m", String::concat);
    try {
      E2e.Result served =
          fixture.unchosen("run-default", "run", "-d", "-t", tarball, "--", "echo", "served");
      assertEquals(0, served.exitCode, served.describe());
      assertTrue(served.output.contains("served\n"), served.describe());
      assertFalse(served.output.contains("running a server of its own"), served.describe());
      assertEquals(0, fixture.uchroot("status-default", "engine", "status").exitCode);
    } finally {
      fixture.stopEngine();
    }

    // A user's uchroot.conf, as a new user writes it.
    E2e.write(
        fixture.work.resolve("config/uchroot/uchroot.conf"),
        "uchroot.engine.default = standalone\n");
    if (caller.user() != null) {
      E2e.chownTree(fixture.work.resolve("config"), caller.user());
    }
    E2e.Result own =
        fixture.unchosen("run-conf", "run", "-d", "-t", tarball, "--", "echo", "served");
    assertEquals(0, own.exitCode, own.describe());
    assertTrue(own.output.contains("served\n"), own.describe());
    assertTrue(
        own.output.contains("running a server of its own: uchroot.engine.default is standalone"),
        own.describe());
    // The engine that read the configuration did not stay.
    assertEquals(3, fixture.uchroot("status-conf", "engine", "status").exitCode);
    assertFalse(Files.exists(fixture.socket(), LinkOption.NOFOLLOW_LINKS));

    // The option chooses over the configuration; run's options end at its command, whose -d is
    // its own.
    try {
      E2e.Result shared =
          fixture.unchosen(
              "run-shared", "run", "--engine=shared", "-t", tarball, "--", "ls", "-d", "/");
      assertEquals(0, shared.exitCode, shared.describe());
      assertTrue(shared.output.contains("/\n"), shared.describe());
      assertFalse(shared.output.contains("uchroot: "), shared.describe());
      assertEquals(0, fixture.uchroot("status-shared", "engine", "status").exitCode);
      // A running engine sends a frontend that chose nothing to a server of its own as well.
      try (VirtServerProcess frontend = fixture.unchosenFrontend("conf-standalone", "-d")) {
        frontend.ok("open");
        frontend.awaitStderr(
            Pattern.compile("running a server of its own: uchroot.engine.default is standalone"),
            LIMIT);
        String status = fixture.uchroot("status-running", "engine", "status").output;
        assertTrue(status.contains("frontends: 0"), status);
        frontend.ok("close");
        frontend.send("quit");
        assertEquals("exit 0", frontend.awaitServerExit(LIMIT), frontend.describe());
      }
    } finally {
      fixture.stopEngine();
    }
    E2e.Result standalone =
        fixture.unchosen(
            "run-standalone", "run", "--engine", "standalone", "-t", tarball, "ls", "-d", "/");
    assertEquals(0, standalone.exitCode, standalone.describe());
    assertEquals(3, fixture.uchroot("status-standalone", "engine", "status").exitCode);
    assertEquals(List.of(), fixture.testbeds(), "a testbed stays");
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void theUsagePagesRunCommandIsServedByTheEngineAsWritten(E2e.Caller caller) throws IOException {
    Fixture fixture = new Fixture(caller.user());
    String usage = Files.readString(E2e.projectRoot().resolve("docs/usage.md"));
    Matcher block =
        Pattern.compile("the same way, on the terminal it runs on:\n\n```sh\n([^`]*)```")
            .matcher(usage);
    assertTrue(block.find(), "docs/usage.md has no uchroot run command for the engine");
    Files.createSymbolicLink(fixture.work.resolve("bookworm.tar"), E2e.debianTarball());
    // The engine stays until the test stops it, having asked whether it runs.
    fixture.environment.merge(
        "UCHROOT_JAVA_OPTS", " -Duchroot.engine.idle-timeout=10m", String::concat);
    try {
      E2e.Result ran =
          fixture.run(
              "usage-run",
              List.of("env", "-u", "UCHROOT_ENGINE", "sh", "-c", block.group(1).strip()));
      assertEquals(0, ran.exitCode, ran.describe());
      assertTrue(Pattern.compile("(?m)^12\\.[0-9]+$").matcher(ran.output).find(), ran.describe());
      assertEquals(0, fixture.uchroot("status-usage", "engine", "status").exitCode);
    } finally {
      fixture.stopEngine();
    }
  }

  @Test
  void aBadDefaultInTheConfigurationIsOneLineAndNoServer() throws IOException {
    Fixture fixture = new Fixture(null);
    E2e.write(
        fixture.work.resolve("config/uchroot/uchroot.conf"),
        "uchroot.engine.default = sometimes\n");
    fixture.environment.put("XDG_CONFIG_HOME", fixture.work.resolve("config").toString());
    E2e.Result ran =
        fixture.unchosen(
            "run-bad-conf", "run", "-t", SignalFixtures.busyboxTarball().toString(), "true");
    assertEquals(125, ran.exitCode, ran.describe());
    List<String> lines = ran.output.lines().toList();
    assertEquals(1, lines.size(), ran.describe());
    assertTrue(
        lines
            .get(0)
            .matches(
                "uchroot \\[[0-9:]+\\]: ERROR: uchroot.engine.default is \"sometimes\" in"
                    + " uchroot.conf: it is shared or standalone; correct it, or choose with"
                    + " --engine or UCHROOT_ENGINE"),
        ran.describe());
    // Every command refuses that configuration, engine status included: the socket says it.
    assertFalse(Files.exists(fixture.socket(), LinkOption.NOFOLLOW_LINKS));
  }

  @Test
  void ctrlCOfAUchrootRunInTheEngineInterruptsItsCommandOnly() throws IOException {
    Fixture fixture = new Fixture(null);
    Map<String, String> env = new LinkedHashMap<>(fixture.environment);
    env.put("UCHROOT_ENGINE", "shared");
    String script = "trap 'echo interrupted; exit 7' INT; echo armed; sleep 30 & wait; echo slept";
    try (VirtServerProcess spared = fixture.frontend("spared-by-run");
        LiveProcess run =
            LiveProcess.start(
                "shared-run-ctrl-c",
                fixture.work,
                env,
                List.of(
                    E2e.distributionDir().resolve("bin/uchroot").toString(),
                    "run",
                    "-t",
                    SignalFixtures.busyboxTarball().toString(),
                    "--",
                    "sh",
                    "-c",
                    script))) {
      spared.ok("open");
      VirtServerProcess.Job sparedJob = spared.launch("spared", exec(spared.execProgram(), script));
      sparedJob.awaitLine("armed", LIMIT);
      run.awaitOutput(Pattern.compile("armed"), LIMIT);
      // The launcher execs the frontend: this pid is the process a terminal's Ctrl+C reaches.
      E2e.Result kill =
          E2e.run(
              "kill-run",
              null,
              fixture.work,
              Map.of(),
              LIMIT,
              List.of("kill", "-INT", Long.toString(run.pid())));
      assertEquals(0, kill.exitCode, kill.describe());
      assertEquals(7, run.waitFor(LIMIT), run.describe());
      assertTrue(run.printed(Pattern.compile("(?m)^interrupted$")), run.describe());
      assertTrue(
          run.printed(Pattern.compile("SIGINT: interrupted 1 running command")), run.describe());
      assertEquals("state=open jobs=1 interrupts=0", spared.ok("status"));
      spared.ok("close");
      spared.send("quit");
      assertEquals("exit 0", spared.awaitServerExit(LIMIT), spared.describe());
    } finally {
      fixture.stopEngine();
    }
    assertEquals(List.of(), fixture.testbeds(), "the run's testbed stays");
  }

  @Test
  void eachFrontendsRootfsModeAndGracePeriodsAreItsSessionsOwn() throws IOException {
    Fixture fixture = new Fixture(null);
    try (VirtServerProcess unpacked =
            fixture.frontend("unpacked", "--rootfs-mode=unpack", "--grace-before-term=300ms");
        VirtServerProcess overlaid = fixture.frontend("overlaid", "--rootfs-mode=overlay")) {
      unpacked.ok("open");
      overlaid.ok("open");
      String status = fixture.uchroot("status", "engine", "status").output;
      assertTrue(status.contains("frontends: 2"), "both in the engine:\n" + status);
      assertFalse(rootMount(unpacked).contains("overlay"), rootMount(unpacked));
      assertTrue(rootMount(overlaid).contains("overlay"), rootMount(overlaid));

      VirtServerProcess.Job job =
          unpacked.launch(
              "deaf", exec(unpacked.execProgram(), "trap '' INT; echo armed; sleep 60"));
      job.awaitLine("armed", LIMIT);
      unpacked.signalServer(VirtServerProcess.SIGINT);
      unpacked.awaitStderr(Pattern.compile("SIGINT: .*; SIGTERM in 300ms"), LIMIT);
      assertNotEquals("exit 0", job.awaitStatus(LIMIT), job.describe());
      unpacked.send("quit");
      overlaid.send("quit");
      assertEquals("exit 0", unpacked.awaitServerExit(LIMIT), unpacked.describe());
      assertEquals("exit 0", overlaid.awaitServerExit(LIMIT), overlaid.describe());
    } finally {
      fixture.stopEngine();
    }
  }

  /** The testbed's mount of its root, as its /proc/mounts gives it. */
  private static String rootMount(VirtServerProcess frontend) throws IOException {
    VirtServerProcess.Job job =
        frontend.launch("mounts", exec(frontend.execProgram(), "grep ' / ' /proc/mounts"));
    assertEquals("exit 0", job.awaitStatus(LIMIT), job.describe());
    return job.stdout();
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void sigtermClosesTheTestbedThenTheFrontendDiesOfIt(E2e.Caller caller) throws IOException {
    Fixture fixture = new Fixture(caller.user());
    try (VirtServerProcess frontend = fixture.frontend("terminated")) {
      String scratch = frontend.ok("open");
      VirtServerProcess.Job job =
          frontend.launch("sleeper", exec(frontend.execProgram(), "echo armed; sleep 60"));
      job.awaitLine("armed", LIMIT);
      frontend.signalServer(VirtServerProcess.SIGTERM);
      assertEquals("signal 15", frontend.awaitServerExit(LIMIT), frontend.describe());
      assertFalse(Files.exists(Path.of(VirtServerProcess.unquote(scratch))), scratch);
      assertEquals(List.of(), fixture.testbeds(), "testbeds left after SIGTERM");
    } finally {
      fixture.stopEngine();
    }
  }

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void aKilledFrontendsTestbedIsClosedAsAtEndOfInput(E2e.Caller caller) throws IOException {
    Fixture fixture = new Fixture(caller.user());
    try (VirtServerProcess survivor = fixture.frontend("survivor")) {
      survivor.ok("open");
      try (VirtServerProcess killed = fixture.frontend("killed")) {
        killed.ok("open");
        VirtServerProcess.Job job =
            killed.launch("sleeper", exec(killed.execProgram(), "echo armed; sleep 60"));
        job.awaitLine("armed", LIMIT);
        assertEquals(2, fixture.testbeds().size(), fixture.testbeds().toString());
        killed.signalServer(VirtServerProcess.SIGKILL);
        assertEquals("signal 9", killed.awaitServerExit(LIMIT), killed.describe());
        assertNotEquals("exit 0", job.awaitStatus(LIMIT), job.describe());
        Await.until(
            "the killed frontend's testbed to go",
            LIMIT,
            () -> fixture.testbeds().size() == 1,
            () -> fixture.testbeds().toString());
      }
      // The other frontend's testbed is untouched.
      VirtServerProcess.Job job = survivor.launch("alive", exec(survivor.execProgram(), "echo up"));
      job.awaitLine("up", LIMIT);
      survivor.send("quit");
      assertEquals("exit 0", survivor.awaitServerExit(LIMIT), survivor.describe());
    } finally {
      fixture.stopEngine();
    }
  }

  @Test
  void aKilledEngineFailsItsFrontendsAndCleanupRemovesWhatItLeft() throws IOException {
    Fixture fixture = new Fixture(null);
    try (VirtServerProcess frontend = fixture.frontend("orphaned")) {
      frontend.ok("open");
      VirtServerProcess.Job job =
          frontend.launch("builder", exec(frontend.execProgram(), "echo armed; sleep 60"));
      job.awaitLine("armed", LIMIT);
      long engine = enginePid(fixture.uchroot("status", "engine", "status").output);

      assertTrue(Host.kill(engine, VirtServerProcess.SIGKILL));
      assertEquals(
          "exit 12", frontend.awaitServerExit(Duration.ofSeconds(10)), frontend.describe());
      assertTrue(
          frontend.stderr().contains("the engine ended without an answer"), frontend.describe());
      assertNotEquals("exit 0", job.awaitStatus(LIMIT), job.describe());

      // Its testbed is recorded, and orphaned as soon as the engine has died.
      Await.until(
          "the killed engine's testbed to be orphaned",
          LIMIT,
          () -> fixture.testbeds().stream().anyMatch(line -> line.contains("\torphaned\t")),
          () -> fixture.testbeds().toString());
      E2e.Result cleanup = fixture.uchroot("cleanup", "sessions", "cleanup", "--orphaned");
      assertEquals(0, cleanup.exitCode, cleanup.tail(20));
      assertEquals(List.of(), fixture.testbeds(), cleanup.tail(20));
    }
  }

  @Test
  void anotherUserIsRefusedAndGetsAnEngineOfItsOwn() throws IOException {
    Fixture root = new Fixture(null);
    String other = E2e.testUser();
    try (VirtServerProcess frontend = root.frontend("roots")) {
      frontend.ok("capabilities");
      // Opened up on purpose, so that only the engine's check stands in the other user's way.
      Files.setPosixFilePermissions(
          root.runtimeDir(), PosixFilePermissions.fromString("rwx--x--x"));
      Files.setPosixFilePermissions(root.socket(), PosixFilePermissions.fromString("rw-rw-rw-"));
      Map<String, String> env = new LinkedHashMap<>(root.environment);
      E2e.Result refused =
          E2e.run(
              "shared-engine-refused",
              other,
              tempDir,
              env,
              LIMIT,
              List.of(
                  E2e.distributionDir().resolve("bin/autopkgtest-virt-uchroot").toString(),
                  "--engine=shared"));
      assertEquals(12, refused.exitCode, refused.tail(20));
      assertTrue(refused.output.contains("refusing a client of user " + other), refused.tail(20));

      Fixture own = new Fixture(other);
      try (VirtServerProcess theirs = own.frontend("theirs")) {
        theirs.ok("capabilities");
        long theirEngine = enginePid(own.uchroot("status", "engine", "status").output);
        long rootsEngine = enginePid(root.uchroot("status", "engine", "status").output);
        assertNotEquals(rootsEngine, theirEngine);
        theirs.send("quit");
        assertEquals("exit 0", theirs.awaitServerExit(LIMIT), theirs.describe());
      } finally {
        own.stopEngine();
      }
      frontend.send("quit");
      assertEquals("exit 0", frontend.awaitServerExit(LIMIT), frontend.describe());
    } finally {
      root.stopEngine();
    }
  }

  @Test
  void frontendsStartingAtOnceMakeOneEngine() throws IOException {
    Fixture fixture = new Fixture(null);
    List<VirtServerProcess> frontends = new ArrayList<>();
    try {
      List<Thread> starts = new ArrayList<>();
      for (int i = 0; i < 4; i++) {
        int n = i;
        Thread start =
            new Thread(
                () -> {
                  try {
                    VirtServerProcess started = fixture.frontend("at-once-" + n);
                    synchronized (frontends) {
                      frontends.add(started);
                    }
                  } catch (IOException e) {
                    throw new java.io.UncheckedIOException(e);
                  }
                });
        start.start();
        starts.add(start);
      }
      for (Thread start : starts) {
        start.join();
      }
      assertEquals(4, frontends.size());
      String status = fixture.uchroot("status", "engine", "status").output;
      assertTrue(status.contains("frontends: 4"), status);
      List<String> engines =
          SignalFixtures.processesWithEnvironment(fixture.runtimeDir().toString()).stream()
              .filter(line -> line.contains("engine --detached"))
              .toList();
      assertEquals(1, engines.size(), engines.toString());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      for (VirtServerProcess frontend : frontends) {
        frontend.close();
      }
      fixture.stopEngine();
    }
  }

  @Test
  void theDocumentedPythonClientRunsACommandInATestbed() throws IOException {
    Fixture fixture = new Fixture(null);
    String protocol = Files.readString(E2e.projectRoot().resolve("docs/protocol.md"));
    Matcher block =
        Pattern.compile("from Python, with the exec relay[^`]*```sh\n([^`]*)```").matcher(protocol);
    assertTrue(block.find(), "docs/protocol.md has no command for engine-client.py");
    String command =
        block
            .group(1)
            .strip()
            .replace("/tmp/bookworm.tar", SignalFixtures.busyboxTarball().toString())
            .replace("cat /etc/debian_version", "id -u");
    try {
      E2e.Result ran =
          E2e.run(
              "shared-python-client",
              null,
              E2e.projectRoot(),
              fixture.environment,
              LIMIT,
              List.of("sh", "-c", command));
      assertEquals(0, ran.exitCode, ran.tail(30));
      assertTrue(ran.output.contains("0\nexit status 0"), ran.tail(30));
      assertEquals(List.of(), fixture.testbeds(), "the client's testbed stays");
    } finally {
      fixture.stopEngine();
    }
  }

  private static long enginePid(String status) {
    Matcher m = PID.matcher(status);
    assertTrue(m.find(), "no pid in:\n" + status);
    return Long.parseLong(m.group(1));
  }

  /** A user's own runtime and state directories, and frontends started there. */
  private final class Fixture {
    final String user;
    final Path work;
    final Map<String, String> environment;

    Fixture(String user) throws IOException {
      E2e.requireRoot();
      E2e.requireCommands("perl", "runuser", "mkfifo");
      this.user = user;
      Path base = Files.createDirectories(tempDir.resolve(SignalFixtures.who(user)));
      this.work = SignalFixtures.workDir(base, user);
      Files.setPosixFilePermissions(tempDir, PosixFilePermissions.fromString("rwx--x--x"));
      Map<String, String> env = new LinkedHashMap<>(SignalFixtures.environment(work, user, leaks));
      // Every engine of these tests is its own, and ends two seconds after its last frontend.
      env.put("UCHROOT_ENGINE", "shared");
      env.put("UCHROOT_RUNTIME_DIR", runtimeDir().toString());
      env.put(
          "UCHROOT_JAVA_OPTS",
          env.getOrDefault("UCHROOT_JAVA_OPTS", "") + " -Duchroot.engine.idle-timeout=2s");
      this.environment = env;
      leaks.watch(work.resolve("tmp"));
    }

    Path runtimeDir() {
      return work.resolve("run");
    }

    Path socket() {
      return runtimeDir().resolve("engine.sock");
    }

    VirtServerProcess frontend(String name, String... options) throws IOException {
      List<String> args = new ArrayList<>(List.of(options));
      args.addAll(List.of("--engine=shared", "-t", SignalFixtures.busyboxTarball().toString()));
      return VirtServerProcess.start(
          "shared-" + name + "-" + SignalFixtures.who(user),
          user,
          work.resolve("frontend-" + name),
          environment,
          args);
    }

    /** {@code uchroot ARGS} where neither --engine nor UCHROOT_ENGINE chooses. */
    E2e.Result unchosen(String name, String... args) {
      List<String> argv = new ArrayList<>(List.of("env", "-u", "UCHROOT_ENGINE"));
      argv.add(E2e.distributionDir().resolve("bin/uchroot").toString());
      argv.addAll(List.of(args));
      return run(name, argv);
    }

    /** A frontend where neither --engine nor UCHROOT_ENGINE chooses. */
    VirtServerProcess unchosenFrontend(String name, String... options) throws IOException {
      List<String> args = new ArrayList<>(List.of(options));
      args.addAll(List.of("-t", SignalFixtures.busyboxTarball().toString()));
      Map<String, String> env = new LinkedHashMap<>(environment);
      env.remove("UCHROOT_ENGINE");
      return VirtServerProcess.start(
          "shared-" + name + "-" + SignalFixtures.who(user),
          user,
          work.resolve("frontend-" + name),
          env,
          args,
          List.of("env", "-u", "UCHROOT_ENGINE"));
    }

    E2e.Result uchroot(String name, String... args) {
      List<String> argv = new ArrayList<>();
      argv.add(E2e.distributionDir().resolve("bin/uchroot").toString());
      argv.addAll(List.of(args));
      return run(name, argv);
    }

    E2e.Result run(String name, List<String> argv) {
      try {
        return E2e.run(
            "shared-" + name + "-" + SignalFixtures.who(user),
            user,
            work,
            environment,
            LIMIT,
            argv);
      } catch (IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
    }

    /** The testbeds recorded in this fixture's state directory. */
    List<String> testbeds() {
      return uchroot("sessions", "sessions", "list")
          .output
          .lines()
          .filter(line -> line.matches("s[0-9a-f]+\t.*"))
          .toList();
    }

    void stopEngine() {
      E2e.Result stopped = uchroot("stop", "engine", "stop");
      assertEquals(0, stopped.exitCode, stopped.tail(20));
    }
  }
}
