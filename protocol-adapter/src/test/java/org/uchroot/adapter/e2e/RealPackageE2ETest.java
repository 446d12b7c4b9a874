package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.uchroot.engine.LeakCheck;

/**
 * Real Debian source packages (protocol-adapter/src/test/realpkg/packages.tsv), fetched with {@code
 * apt-get source}, tested by autopkgtest against the server under test on the buildd tarball: as
 * root and as the unprivileged test user in overlay mode, and the packages marked so once more as
 * root in unpack mode. Their test dependencies come from the archive (network).
 *
 * <p>Every test's verdict and autopkgtest's exit status must be those that autopkgtest-virt-unshare
 * gave on the same tarball, recorded by {@code realpkg/record-reference} in {@code
 * realpkg/reference/}: a failing test of the package is fine as long as it fails with the reference
 * too, and a skipped test counts as a skip, never as a pass. The packages marked "sbuild" are also
 * built by sbuild, with their build dependencies from the archive, and must give the binary
 * packages the reference's build gave. The unprivileged runs go through the shared engine, the
 * others through servers of their own.
 *
 * <p>Needs deb-src entries for bookworm in the APT sources (and {@code apt-get update}).
 */
@Tag("e2e")
class RealPackageE2ETest {

  /**
   * A build-needed package builds in the testbed: libxcrypt took 26 minutes with the reference on
   * two cores busy with other work as well.
   */
  private static final Duration LIMIT = Duration.ofMinutes(45);

  /** Wall times of this run, printed side by side with the reference's at the end. */
  private static final Map<String, String> TIMES = new LinkedHashMap<>();

  @RegisterExtension final LeakCheck leaks = new LeakCheck();

  /** Removed by JUnit only after LeakCheck has looked for leftovers in it. */
  @TempDir Path tempDir;

  /** A line of packages.tsv. */
  record Package(String name, String version, Set<String> modes, String exercises) {
    /** Version without epoch, as in the file names of the source package. */
    String fileVersion() {
      return version.substring(version.indexOf(':') + 1);
    }

    String key() {
      return name + "_" + fileVersion();
    }
  }

  /**
   * One run: the package, root or the unprivileged test user, the rootfs mode, and the engine
   * (shared, or standalone: a server of its own).
   */
  record Run(Package pkg, boolean unprivileged, String mode, String engine) {
    @Override
    public String toString() {
      return pkg.name()
          + " "
          + pkg.version()
          + ", "
          + (unprivileged ? "unprivileged" : "root")
          + ", "
          + mode
          + ", "
          + engine;
    }
  }

  /** What autopkgtest-virt-unshare gave: exit status and verdict by test, in order. */
  record Reference(int exitStatus, String wallSeconds, Map<String, String> verdicts) {}

  static Path realpkgDir() {
    return E2e.projectRoot().resolve("protocol-adapter/src/test/realpkg");
  }

  static List<Package> packages() throws IOException {
    List<Package> packages = new ArrayList<>();
    for (String line : Files.readAllLines(realpkgDir().resolve("packages.tsv"))) {
      if (line.isBlank() || line.startsWith("#")) {
        continue;
      }
      String[] f = line.split("\t");
      if (f.length < 3) {
        fail("packages.tsv: expected package, version and modes, separated by tabs: " + line);
      }
      packages.add(new Package(f[0], f[1], Set.of(f[2].split(",")), f.length > 3 ? f[3] : ""));
    }
    if (packages.size() < 3) {
      fail("packages.tsv names " + packages.size() + " packages; at least three are wanted");
    }
    return packages;
  }

  static Stream<Arguments> runs() throws IOException {
    List<Arguments> runs = new ArrayList<>();
    for (Package p : packages()) {
      runs.add(Arguments.of(new Run(p, false, "overlay", "standalone")));
      runs.add(Arguments.of(new Run(p, true, "overlay", "shared")));
      if (p.modes().contains("unpack")) {
        runs.add(Arguments.of(new Run(p, false, "unpack", "standalone")));
      }
    }
    return runs.stream();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("runs")
  void sameVerdictsAsTheReference(Run run) throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("autopkgtest", "apt-get", "runuser");
    Package p = run.pkg();
    Reference reference = reference(p);
    Path dsc = fetchSource(p);
    String server = E2e.server();
    Path tarball = E2e.debianTarball();
    Workspace workspace = workspace(run);
    String user = workspace.user();
    Path work = workspace.work();
    Path out = workspace.out();
    Path tmp = workspace.tmp();
    Map<String, String> env = workspace.env();

    // As record-reference runs it: "@" from the archive, and package lists, which the buildd
    // tarball lacks.
    List<String> command =
        new ArrayList<>(
            List.of(
                "autopkgtest",
                "--no-built-binaries",
                "--apt-upgrade",
                "--summary-file=" + work.resolve("summary"),
                "--output-dir=" + out,
                dsc.toString(),
                "--",
                server,
                "-t",
                tarball.toString()));
    if (server.equals(E2e.DEFAULT_SERVER) && run.mode().equals("unpack")) {
      command.add("--rootfs-mode=unpack");
    }
    String name =
        "realpkg-"
            + p.name()
            + "-"
            + server
            + "-"
            + (user == null ? "root" : user)
            + "-"
            + run.mode()
            + "-"
            + run.engine();
    E2e.Result r = E2e.run(name, user, work, env, LIMIT, command);

    String seconds = String.format(Locale.ROOT, "%.0f", r.elapsed.toMillis() / 1000.0);
    synchronized (TIMES) {
      TIMES.put(
          run + " (" + server + ")", seconds + " s, reference " + reference.wallSeconds() + " s");
    }
    System.out.printf(
        Locale.ROOT,
        "[e2e] realpkg %s with %s: %s s (reference, unshare as root:" + " %s s)%n",
        run,
        server,
        seconds,
        reference.wallSeconds());

    Path summaryFile = work.resolve("summary");
    String summary =
        Files.isRegularFile(summaryFile)
            ? Files.readString(summaryFile, StandardCharsets.UTF_8)
            : "";
    Map<String, String> verdicts = verdicts(summary);
    assertEquals(
        reference.verdicts(),
        verdicts,
        "per-test verdicts differ from the reference's"
            + " (realpkg/reference/"
            + p.key()
            + ".summary)\nsummary file:\n"
            + summary
            + "\n"
            + r.describe());
    assertEquals(
        reference.exitStatus(),
        r.exitCode,
        "autopkgtest's exit status differs from the reference's\n" + r.describe());
    // Testbeds are made in TMPDIR; LeakCheck looks for directories left there.
    assertEquals(List.of(), sessionsUnder(tmp, user, env), "testbeds left recorded after the run");
  }

  static Stream<Arguments> sbuildRuns() throws IOException {
    List<Arguments> runs = new ArrayList<>();
    for (Package p : packages()) {
      if (p.modes().contains("sbuild")) {
        runs.add(Arguments.of(new Run(p, false, "overlay", "standalone")));
        runs.add(Arguments.of(new Run(p, true, "overlay", "shared")));
      }
    }
    return runs.stream();
  }

  /**
   * sbuild builds the package with its build dependencies from the archive, and the result is the
   * reference's: sbuild's exit status and status, the same binary packages with the same files
   * (realpkg/sbuild-outcome, as record-reference recorded them).
   */
  @ParameterizedTest(name = "sbuild {0}")
  @MethodSource("sbuildRuns")
  void sbuildBuildsWhatTheReferenceBuilt(Run run) throws IOException {
    E2e.requireRoot();
    E2e.requireCommands("sbuild", "dpkg-deb", "runuser");
    Package p = run.pkg();
    Path recorded = realpkgDir().resolve("reference").resolve(p.key() + ".sbuild");
    if (!Files.isRegularFile(recorded)) {
      fail("no sbuild reference for " + p.name() + ": run realpkg/record-reference " + p.name());
    }
    List<String> reference = Files.readAllLines(recorded);
    Path dsc = fetchSource(p);
    String server = E2e.server();
    Workspace workspace = workspace(run);
    Path work = workspace.work();
    Path out = Files.createDirectories(workspace.out());
    Path config = work.resolve("sbuild.conf");
    // sbuild looks the server up in its own $path setting, not in the environment.
    E2e.write(config, "$path = '" + E2e.childPath() + "';\n1;\n");
    if (workspace.user() != null) {
      E2e.chownTree(work, workspace.user());
    }
    Map<String, String> env = workspace.env();
    env.put("SBUILD_CONFIG", config.toString());
    String name =
        "realpkg-sbuild-"
            + p.name()
            + "-"
            + server
            + "-"
            + (workspace.user() == null ? "root" : workspace.user())
            + "-"
            + run.engine();
    E2e.Result r =
        E2e.run(
            name,
            workspace.user(),
            work,
            env,
            LIMIT,
            List.of(
                "sbuild",
                "--chroot-mode=autopkgtest",
                "--autopkgtest-virt-server=" + server,
                "--autopkgtest-virt-server-opts=-t " + E2e.debianTarball(),
                "--dist=bookworm",
                "--nolog",
                "--build-dir=" + out,
                "--no-run-lintian",
                "--no-run-autopkgtest",
                "--no-run-piuparts",
                dsc.toString()));
    String seconds = String.format(Locale.ROOT, "%.0f", r.elapsed.toMillis() / 1000.0);
    synchronized (TIMES) {
      TIMES.put(
          "sbuild " + run + " (" + server + ")",
          seconds + " s, reference " + recordedValue(reference, "wall-seconds") + " s");
    }
    Path log = work.resolve("sbuild.log");
    Files.writeString(log, r.output, StandardCharsets.UTF_8);
    E2e.Result outcome =
        E2e.run(
            "realpkg-sbuild-outcome-" + p.name(),
            null,
            work,
            Map.of(),
            Duration.ofMinutes(2),
            List.of(
                "sh",
                realpkgDir().resolve("sbuild-outcome").toString(),
                out.toString(),
                log.toString()));
    assertEquals(0, outcome.exitCode, outcome.describe());
    assertEquals(
        Integer.parseInt(recordedValue(reference, "exit-status")),
        r.exitCode,
        "sbuild's exit status differs from the reference's\n" + r.describe());
    assertEquals(
        reference.stream().filter(l -> l.startsWith("status\t") || l.startsWith("file\t")).toList(),
        outcome.output.lines().toList(),
        "what sbuild built differs from the reference's (" + recorded + ")\n" + r.describe());
    assertEquals(
        List.of(),
        sessionsUnder(workspace.tmp(), workspace.user(), env),
        "testbeds left recorded after the build");
  }

  /** The value of a {@code KEY<TAB>VALUE} line of a recorded reference. */
  private static String recordedValue(List<String> reference, String key) {
    return reference.stream()
        .filter(l -> l.startsWith(key + "\t"))
        .map(l -> l.substring(key.length() + 1))
        .findFirst()
        .orElseThrow(() -> new AssertionError("the reference records no " + key));
  }

  /** A run's directories, user and environment. */
  private record Workspace(String user, Path work, Path tmp, Path out, Map<String, String> env) {}

  /**
   * The directories of {@code run} in {@code tempDir}, and its environment: for the test user a
   * fresh HOME and runtime directory, and the engine the run names.
   */
  private Workspace workspace(Run run) throws IOException {
    String user = run.unprivileged() ? E2e.testUser() : null;

    // The test user only passes through the (root-owned) temporary directory.
    Files.setPosixFilePermissions(tempDir, PosixFilePermissions.fromString("rwx--x--x"));
    Path work = tempDir.resolve("work");
    Path home = work.resolve("home");
    Path tmp = work.resolve("tmp");
    Path runtimeDir = work.resolve("run");
    Path out = work.resolve("out");
    Files.createDirectories(home);
    Files.createDirectories(tmp);
    Files.createDirectories(runtimeDir);
    Files.setPosixFilePermissions(runtimeDir, PosixFilePermissions.fromString("rwx------"));
    if (user != null) {
      E2e.chownTree(work, user);
    }
    leaks.watch(tmp);

    Map<String, String> env = leaks.tag(E2e.childEnvironment(tmp));
    if (user != null) {
      // A fresh HOME: nothing cached from earlier runs (the overlay base is unpacked anew).
      // runuser keeps root's environment; none of root's directories may be used.
      env.put("HOME", home.toString());
      env.put("USER", user);
      env.put("LOGNAME", user);
      env.put("UCHROOT_RUNTIME_DIR", runtimeDir.toString());
      env.put("XDG_CACHE_HOME", home.resolve(".cache").toString());
      env.put("XDG_STATE_HOME", home.resolve(".local/state").toString());
      env.put("XDG_CONFIG_HOME", home.resolve(".config").toString());
    }
    if (run.engine().equals("shared")) {
      E2e.sharedEngine(env, runtimeDir);
    }

    return new Workspace(user, work, tmp, out, env);
  }

  @AfterAll
  static void printTimes() {
    synchronized (TIMES) {
      TIMES.forEach(
          (run, time) ->
              System.out.printf(Locale.ROOT, "[e2e] realpkg wall time: %s: %s%n", run, time));
    }
  }

  /** {@code NAME VERDICT [DETAIL]} lines of autopkgtest's summary file, as NAME to VERDICT. */
  static Map<String, String> verdicts(String summary) {
    Map<String, String> verdicts = new LinkedHashMap<>();
    for (String line : summary.lines().toList()) {
      String[] words = line.trim().split("\\s+");
      if (words.length >= 2) {
        verdicts.put(words[0], words[1]);
      }
    }
    return verdicts;
  }

  static Reference reference(Package p) throws IOException {
    Path file = realpkgDir().resolve("reference").resolve(p.key() + ".summary");
    if (!Files.isRegularFile(file)) {
      fail(
          "no reference for "
              + p.name()
              + " "
              + p.version()
              + ": run "
              + realpkgDir().resolve("record-reference")
              + " "
              + p.name()
              + " (as root)");
    }
    Integer status = null;
    String wall = "?";
    Map<String, String> verdicts = new LinkedHashMap<>();
    for (String line : Files.readAllLines(file)) {
      String[] f = line.split("\t");
      switch (f[0]) {
        case "exit-status" -> status = Integer.parseInt(f[1]);
        case "wall-seconds" -> wall = f[1];
        case "test" -> verdicts.put(f[1], f[2]);
        default -> {
          // Comments, package and version.
        }
      }
    }
    if (status == null || verdicts.isEmpty()) {
      fail(file + " has no exit status or no verdicts");
    }
    return new Reference(status, wall, verdicts);
  }

  /**
   * The .dsc of the package, downloaded once into the sources cache that record-reference uses too;
   * world-readable, since the unprivileged test user reads it as well.
   */
  static synchronized Path fetchSource(Package p) throws IOException {
    String cacheVariable = System.getenv("UCHROOT_TEST_CACHE");
    Path cache =
        Paths.get(
            cacheVariable == null || cacheVariable.isBlank()
                ? "/var/cache/uchroot-test"
                : cacheVariable);
    Path sources = cache.resolve("sources");
    Path dir = sources.resolve(p.key());
    Path dsc = dir.resolve(p.key() + ".dsc");
    if (Files.isRegularFile(dsc)) {
      return dsc;
    }
    Files.createDirectories(sources);
    Files.setPosixFilePermissions(cache, PosixFilePermissions.fromString("rwxr-xr-x"));
    Files.setPosixFilePermissions(sources, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path partial = Files.createTempDirectory(sources, ".fetch.");
    // --download-only: autopkgtest unpacks the .dsc itself, in the testbed.
    E2e.Result r =
        E2e.run(
            "realpkg-apt-get-source-" + p.name(),
            null,
            partial,
            Map.of(),
            Duration.ofMinutes(10),
            List.of("apt-get", "source", "-q", "--download-only", p.name() + "=" + p.version()));
    if (r.exitCode != 0) {
      fail(
          "apt-get source "
              + p.name()
              + "="
              + p.version()
              + " failed; are deb-src entries for"
              + " bookworm configured (and apt-get update run)? If the archive no longer has this"
              + " version, choose another in packages.tsv and run record-reference.\n"
              + r.describe());
    }
    E2e.Result chmod =
        E2e.run(
            "realpkg-chmod-" + p.name(),
            null,
            partial,
            Map.of(),
            Duration.ofMinutes(1),
            List.of("chmod", "-R", "a+rX", partial.toString()));
    assertEquals(0, chmod.exitCode, chmod.describe());
    Files.move(partial, dir, StandardCopyOption.ATOMIC_MOVE);
    assertTrue(Files.isRegularFile(dsc), "apt-get source did not leave " + dsc);
    return dsc;
  }

  /**
   * The testbeds under {@code dir} that uchroot still has recorded for this user ({@code uchroot
   * sessions list}); none for another server. Only those under {@code dir}: other servers of the
   * same user may be running.
   */
  private static List<String> sessionsUnder(Path dir, String user, Map<String, String> env)
      throws IOException {
    if (!E2e.server().equals(E2e.DEFAULT_SERVER)) {
      return List.of();
    }
    Path uchroot = E2e.distributionDir().resolve("bin/uchroot");
    E2e.Result r =
        E2e.run(
            "realpkg-sessions-list",
            user,
            Paths.get("/"),
            env,
            Duration.ofMinutes(2),
            List.of(uchroot.toString(), "sessions", "list"));
    assertEquals(0, r.exitCode, "uchroot sessions list failed\n" + r.describe());
    return r.output.lines().filter(l -> l.contains(dir + "/")).toList();
  }
}
