package org.uchroot.adapter.virt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.adapter.Fixtures;
import org.uchroot.adapter.protocol.UrlQuoting;
import org.uchroot.engine.BusyboxRootfs;
import org.uchroot.engine.EngineConfig;
import org.uchroot.engine.LeakCheck;

/**
 * Hostile protocol lines on open testbeds: random requests whose paths are traps (testbed symlinks
 * to the host, {@code ..} climbs, /proc's roots, a FIFO, names too long, broken quoting), and
 * random words. Whatever comes, the server answers only {@code ok} lines, fails with one line on
 * stderr and never a stack trace, never hangs, removes its testbed, and changes nothing on the host
 * but where a copyup was asked to write.
 */
@Tag("integration")
class VirtServerFuzzIntegrationTest {

  private static final Set<Integer> STATUSES = Set.of(0, 12, 16);
  private static final Pattern TRACE = Pattern.compile("(?m)^\\s+at |Exception|\\.java:\\d");

  private static Path tarball;
  private static Path execClient;

  @RegisterExtension
  final LeakCheck leaks =
      new LeakCheck(Pattern.compile("uchroot-exec"), LeakCheck.DEFAULT_UNPACK_PATTERN);

  @TempDir Path host;

  private EngineConfig config;

  @BeforeAll
  static void fixtures() throws Exception {
    tarball = BusyboxRootfs.tarball();
    execClient = Fixtures.execClient();
  }

  @BeforeEach
  void watchSockets() throws IOException {
    config = Fixtures.engineConfig();
    Files.createDirectories(config.runtimeDir());
    leaks.watch(config.runtimeDir());
  }

  @Test
  void hostileLinesOnOpenTestbedsLeaveTheHostAsItWas() throws Exception {
    Path sentinel = Files.createDirectories(host.resolve("sentinel/dir"));
    Files.writeString(sentinel.resolve("file"), "keep\n");
    Files.writeString(host.resolve("sentinel/file"), "keep too\n");
    Path src = Files.createDirectories(host.resolve("src"));
    Files.writeString(src.resolve("file"), "down\n");
    Path dest = Files.createDirectories(host.resolve("dest"));
    TreeMap<String, String> before = snapshot(host.resolve("sentinel"));

    Random random = new Random(844459);
    Path trapped = host.resolve("sentinel");
    Paths testbed =
        new Paths(
            List.of(
                "/tmp/trap/file",
                "/tmp/trap/dir/file",
                "/tmp/trap",
                "/tmp/root" + trapped + "/file",
                "/proc/self/root" + trapped + "/file",
                "/tmp/up" + trapped + "/dir/file",
                "/tmp/fifo",
                "/tmp/real",
                "/tmp/dir/inner",
                "/tmp/new",
                "/../../../tmp/new",
                "relative",
                "/tmp/" + "a".repeat(5000)),
            List.of(
                "/tmp/trap/",
                "/tmp/trap/dir/",
                "/tmp/up" + trapped + "/dir/",
                "/proc/1/root" + trapped + "/dir/",
                "/tmp/root/",
                "/tmp/new/",
                "/tmp/dir/",
                "/"));
    Paths hostSources =
        new Paths(
            List.of(
                src.resolve("file").toString(),
                src + "/../src/file",
                host.resolve("missing").toString(),
                "%zz",
                "/" + "d".repeat(5000)),
            List.of(src + "/", host.resolve("missing") + "/"));
    Paths hostDestinations =
        new Paths(
            List.of(
                dest.resolve("x").toString(),
                dest.resolve("no/such/dir/x").toString(),
                dest + "/../dest/y",
                "%2e%2e",
                "/" + "e".repeat(5000)),
            List.of(dest + "/", dest.resolve("new") + "/"));
    String[] verbs = {
      "copydown", "copyup", "copydown", "copyup", "copydown", "copyup", "revert",
      "print-execute-command", "status", "interrupt", "capabilities", "reboot", "open", "close",
      "auxverb_debug_fail", "copy%75p", "\u00e9t\u00e9"
    };

    int lines = 0;
    for (int round = 0; round < 60; round++) {
      try (Conversation c = new Conversation(config, tarball, List.of(execClient.toString()))) {
        assertTrue(c.ask("open").startsWith("ok "), c.messages());
        String downtmpHost = downtmpHost(c);
        setTraps(c, host.resolve("sentinel"));
        boolean ended = false;
        for (int i = 0; i < 8 && !ended; i++) {
          String line = hostileLine(random, verbs, testbed, hostSources, hostDestinations);
          lines++;
          c.send(line);
          String answer = c.pollAnswer(60);
          if (answer == null) {
            int status = c.exitStatus();
            assertTrue(STATUSES.contains(status), line + ": exit " + status + "\n" + c.messages());
            ended = true;
          } else {
            assertTrue(answer.startsWith("ok"), line + " answered " + answer);
          }
        }
        if (!ended) {
          c.send("quit");
          assertEquals(0, c.exitStatus(), c.messages());
        }
        assertFalse(
            TRACE.matcher(c.messages()).find(), "a stack trace on stderr:\n" + c.messages());
        assertFalse(Files.exists(Path.of(downtmpHost), LinkOption.NOFOLLOW_LINKS), downtmpHost);
        assertEquals(before, snapshot(host.resolve("sentinel")), "the host's sentinels changed");
      }
    }
    assertTrue(lines >= 60, lines + " lines");
  }

  /** Testbed or host paths of files and of directories (with a trailing slash). */
  private record Paths(List<String> files, List<String> directories) {}

  /**
   * One request line: mostly a copy between trap paths, most of them alike in directoryness so that
   * the copy is tried; else any verb, now and then with random words.
   */
  private static String hostileLine(
      Random random, String[] verbs, Paths testbed, Paths hostSources, Paths hostDestinations) {
    String verb = verbs[random.nextInt(verbs.length)];
    List<String> words = new ArrayList<>();
    words.add(verb);
    boolean directories = random.nextBoolean();
    boolean mixed = random.nextInt(10) == 0;
    if (verb.equals("copydown")) {
      words.add(quote(pick(random, hostSources, directories)));
      words.add(quote(pick(random, testbed, directories ^ mixed)));
    } else if (verb.equals("copyup")) {
      words.add(quote(pick(random, testbed, directories)));
      words.add(quote(pick(random, hostDestinations, directories ^ mixed)));
    } else if (random.nextInt(4) == 0) {
      words.add(random.nextBoolean() ? quote(pick(random, testbed, directories)) : junk(random));
    }
    return String.join(random.nextInt(8) == 0 ? "  " : " ", words);
  }

  /** Percent signs, control and non-ASCII characters, quoted or not. */
  private static String junk(Random random) {
    String[] pieces = {"%", "%0", "%00", "%0a", "%ff", "\t", "\u0001", "\u00ff", "\u2603", "x"};
    StringBuilder word = new StringBuilder();
    for (int n = 1 + random.nextInt(6); n > 0; n--) {
      word.append(pieces[random.nextInt(pieces.length)]);
    }
    return word.toString();
  }

  private static String pick(Random random, Paths paths, boolean directory) {
    List<String> choices = directory ? paths.directories() : paths.files();
    return choices.get(random.nextInt(choices.size()));
  }

  private static String quote(String path) {
    return UrlQuoting.quote(path);
  }

  /**
   * Testbed symlinks to the host's sentinels, to its root and above the testbed; a FIFO; files, and
   * the sentinels' own paths in the testbed.
   */
  private void setTraps(Conversation c, Path sentinel) throws Exception {
    List<String> exec = new ArrayList<>(executeCommand(c));
    exec.addAll(
        List.of(
            "sh",
            "-c",
            "ln -s "
                + sentinel
                + " /tmp/trap; ln -s / /tmp/root; ln -s ../../../../.. /tmp/up;"
                + " mkfifo /tmp/fifo; mkdir /tmp/dir; echo real > /tmp/real;"
                + " echo inner > /tmp/dir/inner;"
                // The same path in the testbed, where the links lead when resolved inside it.
                + " mkdir -p "
                + sentinel
                + "/dir; echo testbed > "
                + sentinel
                + "/file; echo testbed > "
                + sentinel
                + "/dir/file"));
    ProcessBuilder builder = new ProcessBuilder(exec).redirectErrorStream(true);
    leaks.tag(builder.environment());
    Process process = builder.start();
    String output = new String(process.getInputStream().readAllBytes());
    assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the traps were not set");
    assertEquals(0, process.exitValue(), output);
  }

  /** Each file's and directory's type, mode and content digest, by path. */
  private static TreeMap<String, String> snapshot(Path root) throws Exception {
    TreeMap<String, String> state = new TreeMap<>();
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path path : paths.toList()) {
        String mode =
            PosixFilePermissions.toString(
                Files.getPosixFilePermissions(path, LinkOption.NOFOLLOW_LINKS));
        String content =
            Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS)
                ? HexFormat.of()
                    .formatHex(
                        MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(path)))
                : Files.isDirectory(path, LinkOption.NOFOLLOW_LINKS) ? "dir" : "other";
        state.put(root.relativize(path).toString(), mode + " " + content);
      }
    }
    return state;
  }

  private static String downtmpHost(Conversation c) throws Exception {
    return Conversation.words(c.ask("capabilities")).stream()
        .filter(w -> w.startsWith("downtmp-host="))
        .map(w -> w.substring("downtmp-host=".length()))
        .findFirst()
        .orElseThrow();
  }

  private static List<String> executeCommand(Conversation c) throws Exception {
    List<String> program = new ArrayList<>();
    for (String part : c.ask("print-execute-command").substring(3).split(",")) {
      program.add(UrlQuoting.unquote(part));
    }
    return program;
  }
}
