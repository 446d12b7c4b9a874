package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.uchroot.adapter.e2e.VirtServerProcess.exec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.LeakCheck;

/**
 * Removing a testbed removes the rootfs and nothing else: not a host directory bound into it with
 * {@code -b}, however the commands that ran in it ended and whatever symlinks the testbed holds;
 * not when {@code close} removes it, nor when {@code uchroot sessions cleanup} removes what a
 * killed server left.
 */
@Tag("e2e")
class SignalBindMountE2ETest {

  private static final Duration JOB_LIMIT = Duration.ofSeconds(30);
  private static final Duration COMMAND_LIMIT = Duration.ofSeconds(60);
  private static final String INSIDE = "/srv/shared";

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void closeRemovesOnlyTheRootfs(E2e.Caller caller) throws IOException {
    closeRemovesOnlyTheRootfs(caller.user());
  }

  private void closeRemovesOnlyTheRootfs(String user) throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("perl", "runuser", "mkfifo");
    String who = SignalFixtures.who(user);
    Path work = SignalFixtures.workDir(tempDir, user);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    Path host = hostTree(work, user);
    Map<String, String> before = snapshot(work.resolve("host"));
    leaks.watch(work.resolve("tmp"));

    try (VirtServerProcess server =
        VirtServerProcess.start(
            "signal-bind-" + who,
            user,
            work.resolve("group"),
            SignalFixtures.environment(work, user, leaks),
            List.of(
                "-t",
                SignalFixtures.busyboxTarball().toString(),
                "-u",
                rootfs.toString(),
                "-b",
                host.toString(),
                INSIDE))) {
      server.ok("open");
      List<String> execProgram = server.execProgram();
      plantSymlinks(server, execProgram, host);

      VirtServerProcess.Job top =
          server.launch(
              "in-shared",
              exec(
                  execProgram,
                  "cd " + INSIDE + " && test -f sentinel-0 && echo inside && exec sleep 600"));
      VirtServerProcess.Job deep =
          server.launch(
              "in-deeper",
              exec(
                  execProgram,
                  "cd "
                      + INSIDE
                      + "/sub/deeper && echo inside && while :; do ls >/dev/null; sleep 0.1; done"));
      top.awaitLine("inside", JOB_LIMIT);
      deep.awaitLine("inside", JOB_LIMIT);

      assertEquals("jobs=2", server.ok("interrupt"), server.describe());
      assertEquals("exit 130", top.awaitStatus(JOB_LIMIT), top.describe());
      assertEquals("exit 130", deep.awaitStatus(JOB_LIMIT), deep.describe());
      assertEquals(
          before, snapshot(work.resolve("host")), "the interrupt changed the bound directory");

      // Still in there when close comes.
      VirtServerProcess.Job last =
          server.launch(
              "at-close",
              exec(execProgram, "cd " + INSIDE + "/sub && echo inside && exec sleep 600"));
      last.awaitLine("inside", JOB_LIMIT);
      long closing = System.nanoTime();
      assertEquals("ok", server.request("close", COMMAND_LIMIT), server.describe());
      SignalFixtures.report(
          "bind " + who,
          "close with a command inside the bound directory",
          Duration.ofNanos(System.nanoTime() - closing));
      assertEquals("exit 130", last.awaitStatus(JOB_LIMIT), last.describe());

      assertFalse(Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS), rootfs + " survived close");
      assertEquals(
          before,
          snapshot(work.resolve("host")),
          "close changed the bound directory or its parent");
      // The user's runtime directory stays, for the user's other servers.
      List<String> kept = List.of("group", "host", "state", "tmp");
      assertEquals(
          kept,
          list(work).stream().filter(name -> !name.equals("run")).toList(),
          "close must remove the rootfs and only it from " + work);

      server.send("quit");
      assertEquals("exit 0", server.awaitServerExit(JOB_LIMIT), server.describe());
    }
  }

  /**
   * SIGKILL leaves the testbed behind: {@code uchroot sessions list} shows it as orphaned, a new
   * server warns about it, {@code uchroot sessions cleanup} refuses a live testbed and removes the
   * orphan, sparing the bound host directory.
   */
  @Test
  void sessionsCleanupRemovesWhatAKilledServerLeft() throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("perl", "mkfifo");
    Path work = SignalFixtures.workDir(tempDir, null);
    Path rootfs = SignalFixtures.rootfs(work, "rootfs");
    Path host = hostTree(work, null);
    Map<String, String> before = snapshot(work.resolve("host"));
    leaks.watch(work.resolve("tmp"));
    // The test's own state directory: the orphans of anything else on this host are neither
    // reported here nor removed by --orphaned.
    Path state = work.resolve("state");
    Map<String, String> env = new HashMap<>(SignalFixtures.environment(work, null, leaks));
    // A killed server's orphans; a killed shared engine's are SharedEngineE2ETest's.
    env.put("UCHROOT_ENGINE", "standalone");
    String marker = SignalFixtures.marker("orphan");
    Path[] orphanSockets = new Path[1];
    try {
      sessionsCleanupRemovesWhatAKilledServerLeft(
          work, rootfs, host, before, state, env, marker, orphanSockets);
    } finally {
      // After a failure only: what cleanup should have removed, but outside the test's own
      // directory.
      if (orphanSockets[0] != null) {
        Files.deleteIfExists(orphanSockets[0]);
      }
    }
  }

  private void sessionsCleanupRemovesWhatAKilledServerLeft(
      Path work,
      Path rootfs,
      Path host,
      Map<String, String> before,
      Path state,
      Map<String, String> env,
      String marker,
      Path[] orphanSockets)
      throws IOException {
    int half = marker.length() / 2;
    String orphanId;
    long killedPid;

    try (VirtServerProcess server =
        VirtServerProcess.start(
            "signal-killed",
            null,
            work.resolve("group"),
            env,
            // A killed server of its own leaves its testbed; a frontend's goes with its engine.
            List.of(
                "--engine=standalone",
                "-t",
                SignalFixtures.busyboxTarball().toString(),
                "-u",
                rootfs.toString(),
                "-b",
                host.toString(),
                INSIDE))) {
      server.ok("open");
      List<String> execProgram = server.execProgram();
      orphanSockets[0] = Path.of(execProgram.get(execProgram.size() - 1));
      plantSymlinks(server, execProgram, host);
      VirtServerProcess.Job job =
          server.launch(
              "in-shared",
              exec(
                  execProgram,
                  "m="
                      + marker.substring(0, half)
                      + "; cd "
                      + INSIDE
                      + "/sub && ( setsid sh -c "
                      + "'trap \"\" INT TERM HUP; while :; do sleep 1; done' \"${m}"
                      + marker.substring(half)
                      + "\" </dev/null >/dev/null 2>&1 & ); echo inside; exec sleep 600"));
      job.awaitLine("inside", JOB_LIMIT);
      Await.until(
          "the daemon " + marker + " to run",
          JOB_LIMIT,
          () -> !SignalFixtures.processesWith(marker).isEmpty(),
          job::describe);

      killedPid = server.serverPid();
      server.signalServer(VirtServerProcess.SIGKILL);
      assertEquals("signal 9", server.awaitServerExit(JOB_LIMIT), server.describe());
      // The exec program loses its server; only that it does not hang matters here.
      System.out.println("[e2e] killed server: its exec program: " + job.awaitStatus(JOB_LIMIT));
      assertTrue(
          Files.isDirectory(rootfs, LinkOption.NOFOLLOW_LINKS),
          "nothing was left behind to clean up, so this test proves nothing: " + rootfs);

      SessionLine orphan = sessionFor(sessions(env, "list"), rootfs);
      assertEquals("orphaned", orphan.state, "the killed server's testbed: " + orphan.line);
      assertEquals(killedPid, orphan.pid, "owner of " + orphan.line);
      orphanId = orphan.id;
    }

    // A live testbed next to the orphan: warned about at start, refused by cleanup, spared by
    // --orphaned.
    Path liveRootfs = SignalFixtures.rootfs(work, "live-rootfs");
    try (VirtServerProcess live =
        VirtServerProcess.start(
            "signal-live",
            null,
            work.resolve("live-group"),
            env,
            List.of(
                "-t", SignalFixtures.busyboxTarball().toString(), "-u", liveRootfs.toString()))) {
      String warning =
          live.awaitStderr(Pattern.compile("(?i)orphan|" + Pattern.quote(orphanId)), JOB_LIMIT);
      System.out.println("[e2e] warning of a new server: " + warning);
      live.ok("open");
      SessionLine liveLine = sessionFor(sessions(env, "list"), liveRootfs);
      assertEquals("live", liveLine.state, liveLine.line);
      assertEquals(live.serverPid(), liveLine.pid, liveLine.line);

      E2e.Result refused = sessions(env, "cleanup", liveLine.id);
      assertEquals(125, refused.exitCode, "cleanup of a live testbed\n" + refused.describe());
      assertEquals(
          1, refused.output.strip().lines().count(), "one line of error\n" + refused.describe());
      assertTrue(Files.isDirectory(liveRootfs), "a refused cleanup removed " + liveRootfs);

      long cleaning = System.nanoTime();
      E2e.Result cleanup = sessions(env, "cleanup", "--orphaned");
      SignalFixtures.report(
          "killed server",
          "uchroot sessions cleanup --orphaned",
          Duration.ofNanos(System.nanoTime() - cleaning));
      assertEquals(0, cleanup.exitCode, cleanup.describe());
      assertFalse(
          Files.exists(rootfs, LinkOption.NOFOLLOW_LINKS),
          rootfs + " survived cleanup\n" + cleanup.describe());
      assertFalse(
          Files.exists(orphanSockets[0], LinkOption.NOFOLLOW_LINKS),
          orphanSockets[0] + " survived cleanup\n" + cleanup.describe());
      Path jobSocket =
          orphanSockets[0].resolveSibling(
              orphanSockets[0].getFileName().toString().replace(".exec.sock", ".jobd.sock"));
      assertFalse(
          Files.exists(jobSocket, LinkOption.NOFOLLOW_LINKS), jobSocket + " survived cleanup");
      assertEquals(
          before,
          snapshot(work.resolve("host")),
          "cleanup changed the bound directory or its parent");

      E2e.Result after = sessions(env, "list");
      assertEquals(0, after.exitCode, after.describe());
      assertFalse(after.output.contains(orphanId), "still listed after cleanup:\n" + after.output);
      assertEquals("live", sessionFor(after, liveRootfs).state, after.output);
      VirtServerProcess.Job check =
          live.run("still-usable", live.execProgram(), "echo usable", JOB_LIMIT);
      assertEquals("exit 0", check.status(), check.describe());
      live.ok("close");
      live.send("quit");
      assertEquals("exit 0", live.awaitServerExit(JOB_LIMIT), live.describe());
    }
    assertEquals(
        List.of(),
        SignalFixtures.processesWith(marker),
        "a process of the killed server's testbed remains");
    E2e.Result empty = sessions(env, "list");
    assertEquals(0, empty.exitCode, empty.describe());
    assertEquals("", empty.output.strip(), "sessions left in " + state);
  }

  /**
   * {@code work/host/shared} with sentinel files, also in subdirectories, and a sibling file next
   * to it; owned by {@code user} when given.
   */
  private static Path hostTree(Path work, String user) throws IOException {
    Path shared = Files.createDirectories(work.resolve("host/shared"));
    for (int i = 0; i < 20; i++) {
      Files.writeString(shared.resolve("sentinel-" + i), "keep " + i + "\n");
    }
    Files.createDirectories(shared.resolve("sub/deeper"));
    Files.writeString(shared.resolve("sub/sentinel"), "keep sub\n");
    Files.writeString(shared.resolve("sub/deeper/sentinel"), "keep deeper\n");
    Files.createDirectories(shared.resolve("empty"));
    Files.writeString(work.resolve("host/sibling"), "keep sibling\n");
    if (user != null) {
      E2e.chownTree(work.resolve("host"), user);
    }
    return shared;
  }

  /** Symlinks in the testbed to the bound directory by both its paths, and to /. */
  private static void plantSymlinks(VirtServerProcess server, List<String> execProgram, Path host)
      throws IOException {
    VirtServerProcess.Job links =
        server.run(
            "symlinks",
            execProgram,
            "ln -s "
                + INSIDE
                + " /link-inside && ln -s "
                + host
                + " /link-host-path && ln -s / /link-root"
                + " && mkdir -p /var/nest && ln -s / /var/nest/root && ln -s "
                + INSIDE
                + "/sub /var/nest/sub"
                + " && ln -s "
                + host.getParent()
                + " /tmp/link-host-parent && echo linked",
            JOB_LIMIT);
    assertEquals("exit 0", links.status(), links.describe());
  }

  /** Every path below {@code root} with what it is: file contents, link targets, directories. */
  private static Map<String, String> snapshot(Path root) throws IOException {
    Map<String, String> entries = new TreeMap<>();
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path p : (Iterable<Path>) paths::iterator) {
        String key = root.relativize(p).toString();
        if (Files.isSymbolicLink(p)) {
          entries.put(key, "link " + Files.readSymbolicLink(p));
        } else if (Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS)) {
          entries.put(key, "directory");
        } else {
          entries.put(key, "file " + Files.readString(p));
        }
      }
    }
    return entries;
  }

  private static List<String> list(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return s.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private static E2e.Result sessions(Map<String, String> env, String... args) throws IOException {
    List<String> argv =
        new ArrayList<>(
            List.of(E2e.distributionDir().resolve("bin/uchroot").toString(), "sessions"));
    argv.addAll(List.of(args));
    return E2e.run(
        "uchroot-sessions-" + String.join("-", args), null, Path.of("/"), env, COMMAND_LIMIT, argv);
  }

  /** One line of {@code uchroot sessions list}: {@code ID live|orphaned PID ROOTFS}. */
  private record SessionLine(String line, String id, String state, long pid, Path rootfs) {}

  private static SessionLine sessionFor(E2e.Result list, Path rootfs) {
    assertEquals(0, list.exitCode, list.describe());
    for (String line : list.output.strip().split("\n")) {
      String[] f = line.strip().split("[\t ]+", 4);
      if (f.length == 4 && Path.of(f[3]).equals(rootfs)) {
        assertTrue(f[1].equals("live") || f[1].equals("orphaned"), "state of " + line);
        return new SessionLine(line, f[0], f[1], Long.parseLong(f[2]), Path.of(f[3]));
      }
    }
    return fail("no session with rootfs " + rootfs + " in\n" + list.describe());
  }
}
