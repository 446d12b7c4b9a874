package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.uchroot.engine.LeakCheck;

/**
 * {@code uchroot cache prune} never removes the base of a live overlay testbed: the testbed goes on
 * running commands and reverting on it. When its tarball is replaced, {@code uchroot cache list}
 * says so, another testbed gets a new base, and the old one goes at the first open after its last
 * testbed closed. prune then removes the rest, lock files included.
 */
@Tag("e2e")
class CachePruneE2ETest {

  private static final Duration LIMIT = Duration.ofSeconds(60);

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @ParameterizedTest(name = "as {0}")
  @EnumSource(E2e.Caller.class)
  void pruneKeepsTheBaseOfALiveTestbed(E2e.Caller caller) throws IOException {
    pruneKeepsTheBaseOfALiveTestbed(caller.user());
  }

  private void pruneKeepsTheBaseOfALiveTestbed(String user) throws IOException {
    E2e.requireRoot();
    Path work = SignalFixtures.workDir(tempDir, user);
    Map<String, String> env = environment(work, user);
    // A tarball of the test's own, which it replaces.
    Path tarball = work.resolve("rootfs.tar");
    copyTarball(tarball);
    Path base;
    Path replacement;
    try (VirtServerProcess server = open("prune", work, user, env, tarball)) {
      List<Path> bases = bases(work);
      assertEquals(1, bases.size(), bases.toString());
      base = bases.get(0);
      assertEquals(List.of(new Listed(base, "current", tarball)), list(work, user, env));

      E2e.Result prune = prune(work, user, env);
      assertFalse(prune.output.contains(base.toString()), prune.output);
      assertTrue(Files.isDirectory(base), "the live testbed's base was pruned");

      List<String> exec = server.execProgram();
      assertEquals("alive\n", server.run("after-prune", exec, "echo alive", LIMIT).stdout());
      server.ok("revert");
      assertEquals("alive\n", server.run("after-revert", exec, "echo alive", LIMIT).stdout());

      // Another tarball at the same path: the live testbed keeps the base it has.
      copyTarball(tarball);
      assertEquals(List.of(new Listed(base, "replaced", tarball)), list(work, user, env));
      try (VirtServerProcess second = open("prune-replaced", work, user, env, tarball)) {
        List<Path> both = new ArrayList<>(bases(work));
        assertTrue(both.remove(base) && both.size() == 1, both.toString());
        replacement = both.get(0);
        second.ok("close");
      }
      assertTrue(Files.isDirectory(base), "the base of a live testbed went at another's open");
      assertEquals(
          List.of(
              new Listed(replacement, "current", tarball), new Listed(base, "replaced", tarball)),
          list(work, user, env));
      server.ok("close");
    }
    // The old testbed is closed: the next open of the tarball removes its base.
    try (VirtServerProcess third = open("prune-after", work, user, env, tarball)) {
      assertEquals(
          List.of(replacement), bases(work), "the replaced base outlived its last testbed");
      assertFalse(lockFiles(work).contains(base + ".lock"), "its lock file stayed");
      third.ok("close");
    }
    E2e.Result prune = prune(work, user, env);
    assertTrue(prune.output.contains("removed " + replacement), prune.output);
    assertEquals(List.of(), bases(work));
    assertEquals(List.of(), lockFiles(work), "prune left lock files");
  }

  /**
   * A tarball a user made of a tree of their own (its members, the top directory included, are
   * theirs, not root's) makes a base as well: the base's top directory, owned in the testbed by
   * that user, is still made private.
   */
  @Test
  void aTarballOfTheUsersOwnFilesMakesABase() throws IOException {
    E2e.requireRoot();
    String user = E2e.testUser();
    Path work = SignalFixtures.workDir(tempDir, user);
    Map<String, String> env = environment(work, user);
    Path tree = Files.createDirectories(work.resolve("tree"));
    E2e.Result unpacked =
        E2e.run(
            "own-tree",
            null,
            work,
            Map.of(),
            LIMIT,
            List.of(
                "tar", "-C", tree.toString(), "-xf", SignalFixtures.busyboxTarball().toString()));
    assertEquals(0, unpacked.exitCode, unpacked.output);
    E2e.chownTree(tree, user);
    Path tarball = work.resolve("own.tar");
    E2e.Result packed =
        E2e.run(
            "own-tarball",
            user,
            work,
            env,
            LIMIT,
            List.of("tar", "-C", tree.toString(), "-cf", tarball.toString(), "."));
    assertEquals(0, packed.exitCode, packed.output);

    E2e.Result run =
        E2e.run(
            "own-tarball-run",
            user,
            work,
            env,
            LIMIT,
            List.of(
                E2e.distributionDir().resolve("bin/uchroot").toString(),
                "run",
                "--rootfs-mode",
                "overlay",
                "-t",
                tarball.toString(),
                "--",
                "stat",
                "-c",
                "%u",
                "/bin/busybox"));
    assertEquals(0, run.exitCode, run.output);
    List<Path> bases = bases(work);
    assertEquals(1, bases.size(), bases.toString());
    assertEquals(
        "rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(bases.get(0))));
    assertTrue(
        run.output.lines().anyMatch(line -> line.matches("[1-9][0-9]*")),
        "the tarball's owner stays the files' owner: " + run.output);
    prune(work, user, env);
  }

  /** The busybox tarball at {@code to}, a new file each time, readable by the test user. */
  private static void copyTarball(Path to) throws IOException {
    Files.copy(SignalFixtures.busyboxTarball(), to, StandardCopyOption.REPLACE_EXISTING);
    Files.setPosixFilePermissions(to, PosixFilePermissions.fromString("rw-r--r--"));
  }

  private VirtServerProcess open(
      String name, Path work, String user, Map<String, String> env, Path tarball)
      throws IOException {
    VirtServerProcess server =
        VirtServerProcess.start(
            name,
            user,
            work.resolve("group-" + name),
            env,
            List.of("--rootfs-mode", "overlay", "-t", tarball.toString()));
    server.ok("open");
    return server;
  }

  /** A line of {@code uchroot cache list}, its size and last use checked for their form. */
  private record Listed(Path base, String state, Path tarball) {}

  private static List<Listed> list(Path work, String user, Map<String, String> env)
      throws IOException {
    E2e.Result list =
        E2e.run(
            "cache-list-" + SignalFixtures.who(user),
            user,
            work,
            env,
            LIMIT,
            List.of(E2e.distributionDir().resolve("bin/uchroot").toString(), "cache", "list"));
    assertEquals(0, list.exitCode, list.output);
    List<Listed> listed = new ArrayList<>();
    for (String line : list.output.split("\n")) {
      String[] fields = line.split("\t");
      if (fields.length != 5) {
        continue;
      }
      // The busybox base takes a few megabytes, as du -h writes them.
      assertTrue(fields[1].matches("[1-9][0-9]*(\\.[0-9])?[KM]"), "size: " + line);
      Instant lastUse = Instant.parse(fields[2]);
      assertTrue(
          Duration.between(lastUse, Instant.now()).abs().compareTo(Duration.ofHours(1)) < 0, line);
      listed.add(
          new Listed(
              work.resolve("cache").resolve(fields[0]),
              fields[3],
              Path.of(fields[4]).equals(work.resolve("rootfs.tar").toRealPath())
                  ? work.resolve("rootfs.tar")
                  : Path.of(fields[4])));
    }
    return listed;
  }

  private static E2e.Result prune(Path work, String user, Map<String, String> env)
      throws IOException {
    E2e.Result prune =
        E2e.run(
            "cache-prune-" + SignalFixtures.who(user),
            user,
            work,
            env,
            LIMIT,
            List.of(E2e.distributionDir().resolve("bin/uchroot").toString(), "cache", "prune"));
    assertEquals(0, prune.exitCode, prune.output);
    return prune;
  }

  private Map<String, String> environment(Path work, String user) {
    Map<String, String> env = SignalFixtures.environment(work, user, leaks);
    env.put(
        "UCHROOT_JAVA_OPTS",
        env.get("UCHROOT_JAVA_OPTS") + " -Duchroot.cache-dir=" + work.resolve("cache"));
    return env;
  }

  private static List<String> lockFiles(Path work) throws IOException {
    try (Stream<Path> files = Files.list(work.resolve("cache"))) {
      return files.map(Path::toString).filter(name -> name.endsWith(".lock")).toList();
    }
  }

  /** The cache's bases: its directories, lock and metadata files aside. */
  private static List<Path> bases(Path work) throws IOException {
    try (Stream<Path> files = Files.list(work.resolve("cache"))) {
      return files.filter(Files::isDirectory).toList();
    }
  }
}
