package org.uchroot.engine;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Fails a test that leaves sandbox debris behind: new mounts, still-running processes of a
 * virtualisation server, or new unpack directories in the temporary directories.
 *
 * <p>State is snapshotted before each test and compared after it. Use it as
 * {@code @ExtendWith(LeakCheck.class)} for the defaults, or {@code @RegisterExtension final
 * LeakCheck leaks = new LeakCheck();} to watch more directories ({@link #watch(Path)}) and to
 * {@link #tag(Map) tag} child processes, so that processes of concurrently running tests are not
 * blamed on this one.
 *
 * <p>What counts as a leak:
 *
 * <ul>
 *   <li>a line of {@code /proc/self/mountinfo} that was not there before, whose mount point is
 *       under a watched directory or mentions {@code uchroot} or {@code autopkgtest};
 *   <li>a live, non-zombie process that was not there before (by pid and start time), whose command
 *       line matches {@link #DEFAULT_PROCESS_PATTERN}, unless its environment carries another
 *       test's tag; a process carrying this test's tag counts whatever its command line;
 *   <li>an entry of the system temporary directory matching {@link #DEFAULT_UNPACK_PATTERN}, or any
 *       entry of a directory passed to {@link #watch(Path)}, that was not there before;
 *   <li>but of a user's runtime directory there ({@code uchroot-UID}, where servers of a user
 *       without {@code XDG_RUNTIME_DIR} put their sockets, and which they leave for the user's
 *       other servers), only an entry inside it that was not there before.
 * </ul>
 */
public final class LeakCheck implements BeforeEachCallback, AfterEachCallback {

  /** Environment variable that {@link #tag(Map)} sets in child processes. */
  public static final String TAG_VARIABLE = "UCHROOT_LEAK_CHECK";

  /** Command lines of server-side processes. */
  public static final Pattern DEFAULT_PROCESS_PATTERN =
      Pattern.compile("uchroot|autopkgtest-virt|unshare-helper");

  /**
   * Names of unpack directories: Python's {@code tempfile.mkdtemp()} as used by
   * autopkgtest-virt-unshare, and anything named after the project.
   */
  public static final Pattern DEFAULT_UNPACK_PATTERN = Pattern.compile("tmp[a-z0-9_]{8}|uchroot.*");

  /** A user's runtime directory in a temporary directory. */
  private static final Pattern RUNTIME_DIR = Pattern.compile("uchroot-[0-9]+");

  private static final Pattern MOUNT_PATTERN = Pattern.compile("uchroot|autopkgtest");

  /** How long a process of the test may take to end after it; see {@link #awaitNewProcesses}. */
  private static final Duration PROCESS_GRACE = Duration.ofSeconds(5);

  private static final Path PROC = Paths.get("/proc");

  private final Pattern processPattern;
  private final Pattern unpackPattern;
  private final String tag = UUID.randomUUID().toString();
  private final Map<Path, Pattern> watched = new LinkedHashMap<>();
  private final Map<Path, Set<String>> entriesBefore = new LinkedHashMap<>();
  private Set<String> mountsBefore = Set.of();
  private Set<String> processesBefore = Set.of();
  private boolean started;

  public LeakCheck() {
    this(DEFAULT_PROCESS_PATTERN, DEFAULT_UNPACK_PATTERN);
  }

  public LeakCheck(Pattern processPattern, Pattern unpackPattern) {
    this.processPattern = Objects.requireNonNull(processPattern);
    this.unpackPattern = Objects.requireNonNull(unpackPattern);
  }

  /**
   * Adds this test's tag to the environment of a child process about to be started; descendants
   * that keep their environment inherit it.
   */
  public Map<String, String> tag(Map<String, String> environment) {
    environment.put(TAG_VARIABLE, tag);
    return environment;
  }

  /** The value {@link #tag(Map)} sets. */
  public String tagValue() {
    return tag;
  }

  /**
   * Also requires that no entry appears in {@code dir} from now until the end of the test.
   * Typically a private TMPDIR given to child processes.
   */
  public LeakCheck watch(Path dir) {
    return watch(dir, null);
  }

  /** Like {@link #watch(Path)}, but only entries whose name matches count. */
  public LeakCheck watch(Path dir, Pattern names) {
    Path key = canonical(dir);
    watched.put(key, names);
    if (started) {
      entriesBefore.put(key, entries(key));
    }
    return this;
  }

  @Override
  public void beforeEach(ExtensionContext context) {
    for (Path dir : systemTempDirs()) {
      watched.putIfAbsent(dir, unpackPattern);
    }
    entriesBefore.clear();
    for (Path dir : watched.keySet()) {
      entriesBefore.put(dir, entries(dir));
      for (String name : entriesBefore.get(dir)) {
        if (RUNTIME_DIR.matcher(name).matches()) {
          entriesBefore.put(dir.resolve(name), entries(dir.resolve(name)));
        }
      }
    }
    mountsBefore = mountLines();
    processesBefore = new LinkedHashSet<>(processes().keySet());
    started = true;
  }

  @Override
  public void afterEach(ExtensionContext context) {
    started = false;
    try {
      check(context);
    } finally {
      // Directories watched by one test must not carry over to the next.
      watched.clear();
      entriesBefore.clear();
    }
  }

  private void check(ExtensionContext context) {
    List<String> leaks = new ArrayList<>();
    awaitNewProcesses();

    for (String line : mountLines()) {
      if (!mountsBefore.contains(line) && mountIsOurs(line)) {
        leaks.add("mount: " + line);
      }
    }

    processes()
        .forEach(
            (key, description) -> {
              if (!processesBefore.contains(key)) {
                leaks.add("process: " + description);
              }
            });

    watched.forEach(
        (dir, names) -> {
          Set<String> before = entriesBefore.getOrDefault(dir, Set.of());
          for (String name : entries(dir)) {
            Path entry = dir.resolve(name);
            if (RUNTIME_DIR.matcher(name).matches()
                && Files.isDirectory(entry, LinkOption.NOFOLLOW_LINKS)) {
              Set<String> inside = entriesBefore.getOrDefault(entry, Set.of());
              for (String socket : entries(entry)) {
                if (!inside.contains(socket)) {
                  leaks.add(
                      "runtime entry: "
                          + entry.resolve(socket)
                          + describeEntry(entry.resolve(socket)));
                }
              }
            } else if (!before.contains(name) && (names == null || names.matcher(name).matches())) {
              leaks.add("temp entry: " + entry + describeEntry(entry));
            }
          }
        });

    if (!leaks.isEmpty()) {
      throw new AssertionError(
          "Left behind by " + context.getDisplayName() + ":\n  " + String.join("\n  ", leaks));
    }
  }

  /**
   * Waits, for {@link #PROCESS_GRACE} at most, until the processes that started during the test
   * have ended: a testbed's namespaces end a millisecond or two after its close is answered, with
   * nothing of the testbed left to hold.
   */
  private void awaitNewProcesses() {
    long deadline = System.nanoTime() + PROCESS_GRACE.toNanos();
    for (String key : processes().keySet()) {
      if (processesBefore.contains(key)) {
        continue;
      }
      long pid = Long.parseLong(key.substring(0, key.indexOf('/')));
      ProcessHandle.of(pid)
          .ifPresent(
              process -> {
                try {
                  process
                      .onExit()
                      .get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                } catch (TimeoutException | ExecutionException e) {
                  // Still running: the check names it.
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
              });
    }
  }

  private static List<Path> systemTempDirs() {
    Set<Path> dirs = new LinkedHashSet<>();
    dirs.add(canonical(Paths.get(System.getProperty("java.io.tmpdir"))));
    String env = System.getenv("TMPDIR");
    if (env != null && !env.isEmpty()) {
      dirs.add(canonical(Paths.get(env)));
    }
    dirs.add(canonical(Paths.get("/tmp")));
    List<Path> existing = new ArrayList<>();
    for (Path dir : dirs) {
      if (Files.isDirectory(dir)) {
        existing.add(dir);
      }
    }
    return existing;
  }

  private static Path canonical(Path dir) {
    try {
      return dir.toRealPath();
    } catch (IOException e) {
      return dir.toAbsolutePath().normalize();
    }
  }

  private static Set<String> entries(Path dir) {
    Set<String> names = new TreeSet<>();
    try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir)) {
      for (Path p : stream) {
        names.add(p.getFileName().toString());
      }
    } catch (NoSuchFileException e) {
      // A watched directory that the test itself removed has no leftovers.
    } catch (IOException e) {
      throw new AssertionError("cannot list " + dir + ": " + e, e);
    }
    return names;
  }

  private static String describeEntry(Path p) {
    try {
      String owner = Files.getOwner(p, LinkOption.NOFOLLOW_LINKS).getName();
      String kind = Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS) ? "directory" : "file";
      return " (" + kind + ", owner " + owner + ")";
    } catch (IOException e) {
      return "";
    }
  }

  private static Set<String> mountLines() {
    try {
      // Mount ids are part of each line, so a remount shows up as new too.
      return new LinkedHashSet<>(Files.readAllLines(PROC.resolve("self/mountinfo")));
    } catch (IOException e) {
      throw new AssertionError("cannot read /proc/self/mountinfo: " + e, e);
    }
  }

  private boolean mountIsOurs(String line) {
    String[] fields = line.split(" ");
    if (fields.length < 5) {
      return true;
    }
    String mountPoint = MountTable.unescape(fields[4]);
    if (MOUNT_PATTERN.matcher(mountPoint).find()) {
      return true;
    }
    Path mp = Paths.get(mountPoint);
    for (Path dir : watched.keySet()) {
      if (mp.startsWith(dir)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Live processes that belong to this test, keyed by "pid/starttime" so a reused pid is not
   * mistaken for a process seen before.
   */
  private Map<String, String> processes() {
    Map<String, String> found = new TreeMap<>();
    long self = ProcessHandle.current().pid();
    try (Stream<Path> dirs = Files.list(PROC)) {
      dirs.forEach(
          dir -> {
            String name = dir.getFileName().toString();
            if (!name.chars().allMatch(Character::isDigit) || Long.parseLong(name) == self) {
              return;
            }
            String stat = readString(dir.resolve("stat"));
            if (stat == null) {
              return;
            }
            // The command name in parentheses may contain spaces; fields follow the last ')'.
            int close = stat.lastIndexOf(')');
            if (close < 0) {
              return;
            }
            String[] fields = stat.substring(close + 2).trim().split(" ");
            if (fields.length < 20 || fields[0].equals("Z") || fields[0].equals("X")) {
              return;
            }
            String startTime = fields[19];
            String cmdline = readString(dir.resolve("cmdline"));
            if (cmdline == null || cmdline.isEmpty()) {
              return;
            }
            String command = cmdline.replace('\0', ' ').trim();
            String tagged = tagIn(readString(dir.resolve("environ")));
            boolean ours =
                tag.equals(tagged) || (tagged == null && processPattern.matcher(command).find());
            if (ours) {
              found.put(name + "/" + startTime, "pid " + name + ": " + command);
            }
          });
    } catch (IOException e) {
      throw new AssertionError("cannot list /proc: " + e, e);
    }
    return found;
  }

  private static String tagIn(String environ) {
    if (environ == null) {
      return null;
    }
    String prefix = TAG_VARIABLE + "=";
    for (String var : environ.split("\0")) {
      if (var.startsWith(prefix)) {
        return var.substring(prefix.length());
      }
    }
    return null;
  }

  /** Contents of a /proc file, or null if the process is gone or hidden. */
  private static String readString(Path file) {
    try {
      return new String(Files.readAllBytes(file), StandardCharsets.UTF_8);
    } catch (IOException | SecurityException e) {
      return null;
    }
  }
}
