package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.uchroot.engine.LeakCheck;

/** What the signal tests share: the busybox tarball, their environment, and a look at /proc. */
final class SignalFixtures {

  /**
   * Names this test run's testbeds, so that its leak check can tell their processes from those of
   * anything else running on a shared host.
   */
  static final String RUN =
      "sigrun"
          + Long.toString(ProcessHandle.current().pid(), 36)
          + Long.toString(System.nanoTime() % 1_000_000, 36);

  private static Path busybox;

  private SignalFixtures() {}

  /**
   * The busybox rootfs tarball, built once per test run in a world-readable directory whose name
   * LeakCheck does not take for a testbed.
   */
  static synchronized Path busyboxTarball() throws IOException {
    if (busybox == null) {
      Path dir = Files.createTempDirectory("signal-e2e-rootfs-");
      Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
      Path out = dir.resolve("busybox.tar");
      Process p =
          new ProcessBuilder(
                  "bash", E2e.fixture("make-busybox-rootfs.sh").toString(), out.toString())
              .redirectErrorStream(true)
              .start();
      String output = new String(p.getInputStream().readAllBytes());
      try {
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
          fail("make-busybox-rootfs.sh failed:\n" + output);
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        fail("interrupted");
      }
      Files.setPosixFilePermissions(out, PosixFilePermissions.fromString("rw-r--r--"));
      Runtime.getRuntime()
          .addShutdownHook(
              new Thread(
                  () -> {
                    try {
                      Files.deleteIfExists(out);
                      Files.deleteIfExists(dir);
                    } catch (IOException e) {
                      // A temporary file of the test run.
                    }
                  }));
      busybox = out;
    }
    return busybox;
  }

  /**
   * A leak check that counts this run's processes only: those tagged by the test, and those whose
   * command line names one of its testbeds (the session's namespace holder, which the server starts
   * with an empty environment). The default one would blame any uchroot or autopkgtest process
   * started meanwhile by someone else on the same host.
   */
  static LeakCheck leakCheck() {
    Pattern run = Pattern.compile(Pattern.quote(RUN));
    return new LeakCheck(run, Pattern.compile(".*" + Pattern.quote(RUN) + ".*"));
  }

  /** Where a testbed of this run goes ({@code -u}): a new directory in {@code work}. */
  static Path rootfs(Path work, String name) {
    return work.resolve(name + "-" + RUN);
  }

  /**
   * A work directory in {@code tempDir} for a test running as {@code user} (null: root); the user
   * owns it and may pass through {@code tempDir}.
   */
  static Path workDir(Path tempDir, String user) throws IOException {
    Path work = Files.createDirectories(tempDir.resolve("work"));
    Files.createDirectories(work.resolve("tmp"));
    Files.createDirectories(work.resolve("state"));
    if (user != null) {
      // A session of its own, as a login would give: else the server's sockets would go to
      // a shared /tmp/uchroot-UID that outlives the test.
      Path runtime = Files.createDirectories(work.resolve("run"));
      Files.setPosixFilePermissions(runtime, PosixFilePermissions.fromString("rwx------"));
      Files.setPosixFilePermissions(tempDir, PosixFilePermissions.fromString("rwx--x--x"));
      E2e.chownTree(work, user);
    }
    return work;
  }

  /**
   * The environment of the server: the distribution first on PATH, a private TMPDIR and state
   * directory (the testbeds of this test are recorded there, not among the host's), and this test's
   * LeakCheck tag.
   */
  static Map<String, String> environment(Path work, String user, LeakCheck leaks) {
    Map<String, String> env = new LinkedHashMap<>();
    env.put(
        "PATH",
        E2e.distributionDir().resolve("bin")
            + ":"
            + System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin"));
    env.put("TMPDIR", work.resolve("tmp").toString());
    env.put("LC_ALL", "C.UTF-8");
    String javaOpts = System.getProperty("uchroot.e2e.java-opts", "");
    env.put(
        "UCHROOT_JAVA_OPTS", (javaOpts + " -Duchroot.state-dir=" + work.resolve("state")).strip());
    if (user != null) {
      env.put("HOME", "/home/" + user);
      env.put("UCHROOT_RUNTIME_DIR", work.resolve("run").toString());
    }
    E2e.throughEngine(env, work.resolve("run"));
    return leaks.tag(env);
  }

  static String who(String user) {
    return user == null ? "root" : user;
  }

  /** Command lines of live processes that contain {@code marker}, anywhere on the host. */
  static List<String> processesWith(String marker) {
    return processesWhere("cmdline", marker);
  }

  /** Command lines of live processes whose environment contains {@code marker}. */
  static List<String> processesWithEnvironment(String marker) {
    return processesWhere("environ", marker);
  }

  /** Command lines of live processes whose {@code /proc/PID/file} contains {@code marker}. */
  private static List<String> processesWhere(String file, String marker) {
    List<String> found = new ArrayList<>();
    long self = ProcessHandle.current().pid();
    try (Stream<Path> procs = Files.list(Path.of("/proc"))) {
      for (Path proc : procs.filter(p -> p.getFileName().toString().matches("\\d+")).toList()) {
        if (proc.getFileName().toString().equals(Long.toString(self))) {
          continue;
        }
        try {
          String stat = Files.readString(proc.resolve("stat"));
          String state = stat.substring(stat.lastIndexOf(')') + 2).split(" ")[0];
          String cmdline = Files.readString(proc.resolve("cmdline")).replace('\0', ' ').strip();
          String searched =
              file.equals("cmdline")
                  ? cmdline
                  : Files.readString(proc.resolve(file), StandardCharsets.ISO_8859_1);
          if (!state.equals("Z") && searched.contains(marker)) {
            found.add("pid " + proc.getFileName() + " (" + state + "): " + cmdline);
          }
        } catch (IOException | RuntimeException e) {
          // It ended while we looked.
        }
      }
    } catch (IOException e) {
      fail("cannot list /proc: " + e);
    }
    return found;
  }

  /** A unique word to find a test's processes or files by. */
  static String marker(String what) {
    return "uchroot-e2e-" + what + "-" + Long.toString(System.nanoTime(), 36);
  }

  static String seconds(Duration d) {
    return String.format(Locale.ROOT, "%.2f s", d.toNanos() / 1e9);
  }

  /** Prints a measured figure where the test report shows it. */
  static void report(String test, String what, Duration d) {
    System.out.printf(Locale.ROOT, "[e2e] %s: %s: %s%n", test, what, seconds(d));
  }
}
