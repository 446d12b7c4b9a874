package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the build puts in the distribution, as the launch scripts use it. */
@Tag("e2e")
class DistributionE2ETest {

  /**
   * The class data archive saves a third of a second at every server's start; the JVM has crashed
   * while dumping it, which leaves the build green and every server slower.
   */
  @Test
  void theClassDataArchiveIsBuiltAndUsedWithoutAWord() throws Exception {
    Path archive = E2e.distributionDir().resolve("lib/uchroot.jsa");
    assertTrue(Files.isRegularFile(archive), archive + " was not built");
    // Marked as made for the distribution where it is, so that the launch script uses it there.
    assertEquals(
        E2e.distributionDir().toRealPath() + "\n",
        Files.readString(E2e.distributionDir().resolve("lib/uchroot.jsa.home")));
    assertHelpWithoutAWord(E2e.distributionDir());
  }

  /**
   * A copy of the distribution elsewhere cannot use lib/uchroot.jsa, made for the jars' first
   * paths. Its first run starts without one, says nothing of it on stderr (where an sbuild log
   * would show it) and has the user's own made in the background, which leaves no process and no
   * work directory; the next run loads uchroot's classes from that archive.
   */
  @Test
  void aCopiedDistributionMakesItsOwnArchiveInTheBackground(@TempDir Path dir) throws Exception {
    String user = E2e.testUser();
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path copy = dir.resolve("uchroot");
    Process cp =
        new ProcessBuilder("cp", "-a", E2e.distributionDir().toString(), copy.toString()).start();
    assertTrue(cp.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, cp.exitValue());
    Path cacheHome = Files.createDirectory(dir.resolve("cache"));
    Path tmp = Files.createDirectory(dir.resolve("tmp"));
    E2e.chownTree(cacheHome, user);
    E2e.chownTree(tmp, user);
    List<String> asUser =
        List.of("runuser", "-u", user, "--", "env", "XDG_CACHE_HOME=" + cacheHome, "TMPDIR=" + tmp);

    assertHelpWithoutAWord(asUser, copy);

    Path archives = cacheHome.resolve("uchroot/class-data");
    List<Path> locks = list(archives, "*.lock");
    assertEquals(1, locks.size(), "one background job, holding its lock: " + list(archives, "*"));
    // The launch script took the lock for the job, whose processes hold it to their end.
    Process wait = new ProcessBuilder("flock", locks.get(0).toString(), "true").start();
    assertTrue(wait.waitFor(5, TimeUnit.MINUTES), "the background job did not end");
    assertEquals(0, wait.exitValue());
    List<Path> made = list(archives, "*.jsa");
    String log = Files.readString(list(archives, "*.log").get(0));
    assertEquals(1, made.size(), "no archive made; its log:\n" + log);
    assertEquals(List.of(), list(archives, "*.partial"));
    assertEquals(List.of(), list(tmp, "*"), "the job's work directory is left");
    assertEquals(List.of(), processesMentioning(copy.toString()));

    Path classes = tmp.resolve("classes.txt");
    List<String> logged = new ArrayList<>(asUser);
    logged.add("UCHROOT_JAVA_OPTS=-Xlog:class+load=info:file=" + classes);
    assertHelpWithoutAWord(logged, copy);
    assertTrue(
        Files.readString(classes)
            .contains("org.uchroot.adapter.cli.Main source: shared objects file (top)"),
        "uchroot's classes were not loaded from " + made.get(0));
    assertEquals(List.of(), processesMentioning(copy.toString()));
    assertEquals(made, list(archives, "*.jsa"), "the second run made another archive");
  }

  private static void assertHelpWithoutAWord(Path distribution) throws Exception {
    assertHelpWithoutAWord(List.of(), distribution);
  }

  private static void assertHelpWithoutAWord(List<String> prefix, Path distribution)
      throws Exception {
    List<String> argv = new ArrayList<>(prefix);
    argv.add(distribution.resolve("bin/autopkgtest-virt-uchroot").toString());
    argv.add("-h");
    Process help = new ProcessBuilder(argv).start();
    help.getOutputStream().close();
    byte[] out = help.getInputStream().readAllBytes();
    String err = new String(help.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(help.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, help.exitValue());
    assertTrue(out.length > 0);
    assertEquals("", err, "the JVM said something on stderr");
  }

  private static List<Path> list(Path dir, String glob) throws IOException {
    List<Path> paths = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir, glob)) {
      entries.forEach(paths::add);
    }
    return paths;
  }

  /** Live processes whose command line names {@code text}, as "PID: COMMAND LINE". */
  private static List<String> processesMentioning(String text) throws IOException {
    List<String> found = new ArrayList<>();
    for (Path proc : list(Path.of("/proc"), "[0-9]*")) {
      String cmdline;
      try {
        cmdline = new String(Files.readAllBytes(proc.resolve("cmdline")), StandardCharsets.UTF_8);
      } catch (IOException e) {
        continue; // Gone meanwhile.
      }
      if (cmdline.contains(text)) {
        found.add(proc.getFileName() + ": " + cmdline.replace('\0', ' '));
      }
    }
    return found;
  }
}
