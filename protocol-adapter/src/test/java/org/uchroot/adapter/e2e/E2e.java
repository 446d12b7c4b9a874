package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.GroupPrincipal;
import java.nio.file.attribute.PosixFileAttributeView;
import java.nio.file.attribute.PosixFilePermissions;
import java.nio.file.attribute.UserPrincipal;
import java.nio.file.attribute.UserPrincipalLookupService;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Shared plumbing of the end-to-end tests: which virtualisation server to drive, fixtures, the
 * unprivileged test user, and running commands with their output kept in a log file.
 *
 * <p>{@code UCHROOT_E2E_SERVER} (system property, else environment variable) names the server:
 * {@code uchroot} (default) uses the distribution in {@code protocol-adapter/target/uchroot},
 * anything else (e.g. {@code unshare}) is looked up as {@code autopkgtest-virt-NAME} on the usual
 * PATH, which lets the tests be checked against the reference implementation.
 */
final class E2e {

  static final String SERVER_VARIABLE = "UCHROOT_E2E_SERVER";
  static final String DEFAULT_SERVER = "uchroot";

  private static Path debianTarball;
  private static String testUser;

  private E2e() {}

  /** Short name of the server, as given to autopkgtest after "--". */
  static String server() {
    String value = System.getProperty(SERVER_VARIABLE);
    if (value == null || value.isBlank()) {
      value = System.getenv(SERVER_VARIABLE);
    }
    if (value == null || value.isBlank()) {
      value = DEFAULT_SERVER;
    }
    value = value.trim();
    if (!value.matches("[a-z0-9][a-z0-9+.-]*")) {
      fail(
          SERVER_VARIABLE
              + " must be a server name such as 'uchroot' or 'unshare', not '"
              + value
              + "'");
    }
    return value;
  }

  /** PATH for child processes: the built distribution first when testing uchroot. */
  static String childPath() {
    String path = System.getenv().getOrDefault("PATH", "/usr/local/bin:/usr/bin:/bin");
    String server = server();
    if (server.equals(DEFAULT_SERVER)) {
      Path bin = distributionDir().resolve("bin");
      Path launcher = bin.resolve("autopkgtest-virt-uchroot");
      if (!Files.isExecutable(launcher)) {
        fail(
            launcher
                + " is missing or not executable; build the distribution first"
                + " (mvn package), or set "
                + SERVER_VARIABLE
                + "=unshare to test the reference server");
      }
      return bin + File.pathSeparator + path;
    }
    String program = "autopkgtest-virt-" + server;
    if (findOnPath(program, path) == null) {
      fail(program + " not found on PATH (" + path + ")");
    }
    return path;
  }

  static Path distributionDir() {
    String configured = System.getProperty("uchroot.dist.dir");
    if (configured != null && !configured.isBlank()) {
      return Paths.get(configured).toAbsolutePath();
    }
    return readableByAll(projectRoot().resolve("protocol-adapter/target/uchroot"));
  }

  private static Path readableCopy;

  /**
   * The unprivileged test user runs the distribution too, so it must be reachable by everyone: a
   * checkout under /root is not. Such a distribution is copied once to a world-readable place.
   */
  private static synchronized Path readableByAll(Path dist) {
    boolean reachable = true;
    for (Path d = dist; d != null; d = d.getParent()) {
      try {
        if (!Files.getPosixFilePermissions(d)
            .contains(java.nio.file.attribute.PosixFilePermission.OTHERS_EXECUTE)) {
          reachable = false;
        }
      } catch (IOException e) {
        reachable = false;
      }
    }
    if (reachable || !Files.isDirectory(dist)) {
      return dist;
    }
    if (readableCopy == null) {
      try {
        Path copy = Files.createTempDirectory("uchroot-e2e-dist.");
        Process cp =
            new ProcessBuilder("cp", "-a", dist + "/.", copy.toString()).inheritIO().start();
        if (cp.waitFor() != 0) {
          fail("cannot copy the distribution to " + copy);
        }
        new ProcessBuilder("chmod", "-R", "a+rX", copy.toString()).inheritIO().start().waitFor();
        // The build's class data archive serves only where it was made; without one of its
        // own, each user's first run of the copy would make one in the background.
        new ProcessBuilder(
                "sh", copy.resolve("libexec/make-class-archive.sh").toString(), copy.toString(), "")
            .inheritIO()
            .start()
            .waitFor();
        new ProcessBuilder("chmod", "-R", "a+rX", copy.resolve("lib").toString())
            .inheritIO()
            .start()
            .waitFor();
        Runtime.getRuntime()
            .addShutdownHook(
                new Thread(
                    () -> {
                      try {
                        new ProcessBuilder("rm", "-rf", "--one-file-system", copy.toString())
                            .start()
                            .waitFor();
                      } catch (IOException | InterruptedException e) {
                        // A temporary copy; nothing else depends on it.
                      }
                    }));
        readableCopy = copy;
      } catch (IOException | InterruptedException e) {
        return fail("cannot copy the distribution: " + e);
      }
    }
    return readableCopy;
  }

  /** The top of the source tree, found from the working directory of the test JVM. */
  static Path projectRoot() {
    Path dir = Paths.get(System.getProperty("user.dir")).toAbsolutePath();
    for (Path d = dir; d != null; d = d.getParent()) {
      if (Files.isDirectory(d.resolve("protocol-adapter"))
          && Files.isDirectory(d.resolve("engine"))) {
        return d;
      }
    }
    return fail(
        "cannot find the project root (a directory with engine/ and protocol-adapter/) above "
            + dir);
  }

  /** Where command output is kept, so a CI run can archive it. */
  static Path logDir() {
    String configured = System.getProperty("uchroot.e2e.logs");
    Path dir =
        configured != null && !configured.isBlank()
            ? Paths.get(configured)
            : projectRoot().resolve("protocol-adapter/target/e2e-logs");
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      fail("cannot create " + dir + ": " + e);
    }
    return dir;
  }

  static void requireRoot() {
    if (!"root".equals(System.getProperty("user.name"))) {
      fail(
          "the end-to-end tests must run as root: they also switch to the unprivileged"
              + " test user with runuser (running as "
              + System.getProperty("user.name")
              + ")");
    }
  }

  static void requireCommands(String... commands) {
    String path = System.getenv().getOrDefault("PATH", "");
    List<String> missing = new ArrayList<>();
    for (String command : commands) {
      if (findOnPath(command, path) == null) {
        missing.add(command);
      }
    }
    if (!missing.isEmpty()) {
      fail(
          "required commands not found on PATH: "
              + String.join(", ", missing)
              + " (see .ci/run for the packages to install)");
    }
  }

  private static Path findOnPath(String command, String path) {
    for (String dir : path.split(File.pathSeparator)) {
      if (!dir.isEmpty()) {
        Path candidate = Paths.get(dir, command);
        if (Files.isExecutable(candidate)) {
          return candidate;
        }
      }
    }
    return null;
  }

  /** The cached Debian bookworm buildd tarball, built on first use (needs network then). */
  static synchronized Path debianTarball() {
    if (debianTarball == null) {
      Result r = runFixture("make-debian-tarball.sh", Duration.ofMinutes(20));
      Path tarball = Paths.get(r.output.strip().lines().reduce((a, b) -> b).orElse(""));
      if (!Files.isRegularFile(tarball)) {
        fail("make-debian-tarball.sh did not print a tarball path:\n" + r.tail(40));
      }
      if (tarball.toString().matches(".*\\s.*")) {
        fail(
            "the tarball path must not contain white space (sbuild splits server options): "
                + tarball);
      }
      debianTarball = tarball;
    }
    return debianTarball;
  }

  /** Who runs the server under test: root, or the unprivileged test user. */
  enum Caller {
    ROOT,
    UNPRIVILEGED_USER;

    /** The user to switch to, or null for root (the tests run as root). */
    String user() {
      return this == ROOT ? null : testUser();
    }
  }

  /** Creates the unprivileged test user and its subordinate ids if needed; returns its name. */
  static synchronized String testUser() {
    if (testUser == null) {
      requireRoot();
      Result r = runFixture("make-test-user.sh", Duration.ofMinutes(2));
      String user = r.output.strip().lines().reduce((a, b) -> b).orElse("");
      if (!user.matches("[a-z_][a-z0-9_-]*")) {
        fail("make-test-user.sh did not print a user name:\n" + r.tail(40));
      }
      testUser = user;
    }
    return testUser;
  }

  private static Result runFixture(String name, Duration timeout) {
    Path script = fixture(name);
    try {
      Result r =
          run(
              "fixture-" + name,
              null,
              script.getParent(),
              Map.of(),
              timeout,
              List.of("bash", script.toString()));
      if (r.exitCode != 0) {
        fail(name + " failed with exit status " + r.exitCode + ":\n" + r.tail(40));
      }
      return r;
    } catch (IOException e) {
      return fail("cannot run " + script + ": " + e);
    }
  }

  /**
   * A fixture script: from the engine's test resources on the class path (the engine test-jar),
   * else from the source tree.
   */
  static Path fixture(String name) {
    URL url = E2e.class.getClassLoader().getResource("fixtures/" + name);
    try {
      if (url != null && url.getProtocol().equals("file")) {
        return Paths.get(url.toURI());
      }
      if (url != null) {
        // Inside a jar: copy it out; run through bash, so no exec bit is needed.
        Path copy = Files.createTempFile("fixture-", "-" + name);
        copy.toFile().deleteOnExit();
        try (InputStream in = url.openStream()) {
          Files.copy(in, copy, StandardCopyOption.REPLACE_EXISTING);
        }
        return copy;
      }
    } catch (IOException | URISyntaxException e) {
      fail("cannot read fixture " + url + ": " + e);
    }
    Path source = projectRoot().resolve("engine/src/test/resources/fixtures").resolve(name);
    if (!Files.isRegularFile(source)) {
      fail("fixture " + name + " is neither on the class path nor at " + source);
    }
    return source;
  }

  /** Environment for the command under test: PATH with the server, a private TMPDIR. */
  static Map<String, String> childEnvironment(Path tmpDir) {
    Map<String, String> env = new LinkedHashMap<>();
    env.put("PATH", childPath());
    env.put("TMPDIR", tmpDir.toString());
    env.put("LC_ALL", "C.UTF-8");
    // The same tests run again in other configurations (rootfs mode, exec client).
    String javaOpts = System.getProperty("uchroot.e2e.java-opts", "");
    if (!javaOpts.isBlank()) {
      env.put("UCHROOT_JAVA_OPTS", javaOpts);
    }
    // Beside TMPDIR, not in it: the engine's directory outlives the testbeds there, by design.
    throughEngine(env, tmpDir.resolveSibling(tmpDir.getFileName() + "-run"));
    return env;
  }

  /**
   * With {@code -Duchroot.e2e.engine=shared}, the tests' frontends use the shared engine: one per
   * test, in {@code runtimeDir} (which its frontend makes), ending two seconds after its last
   * frontend, so that every test still leaves nothing behind.
   */
  static void throughEngine(Map<String, String> env, Path runtimeDir) {
    if (System.getProperty("uchroot.e2e.engine", "").equals("shared")) {
      sharedEngine(env, runtimeDir);
    }
  }

  /** The frontends of {@code env} use a shared engine of their own, in {@code runtimeDir}. */
  static void sharedEngine(Map<String, String> env, Path runtimeDir) {
    env.put("UCHROOT_ENGINE", "shared");
    env.put("UCHROOT_RUNTIME_DIR", runtimeDir.toString());
    String javaOpts = env.getOrDefault("UCHROOT_JAVA_OPTS", "");
    env.put("UCHROOT_JAVA_OPTS", (javaOpts + " -Duchroot.engine.idle-timeout=2s").strip());
  }

  static void write(Path file, String content) throws IOException {
    Files.createDirectories(file.getParent());
    Files.writeString(file, content, StandardCharsets.UTF_8);
  }

  static void writeExecutable(Path file, String content) throws IOException {
    write(file, content);
    Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
  }

  /** Hands a directory tree to {@code user} (and its primary group). */
  static void chownTree(Path root, String user) throws IOException {
    UserPrincipalLookupService lookup = FileSystems.getDefault().getUserPrincipalLookupService();
    UserPrincipal owner = lookup.lookupPrincipalByName(user);
    GroupPrincipal group = lookup.lookupPrincipalByGroupName(primaryGroup(user));
    try (Stream<Path> paths = Files.walk(root)) {
      for (Path p : (Iterable<Path>) paths::iterator) {
        PosixFileAttributeView view =
            Files.getFileAttributeView(p, PosixFileAttributeView.class, LinkOption.NOFOLLOW_LINKS);
        view.setOwner(owner);
        view.setGroup(group);
      }
    }
  }

  private static String primaryGroup(String user) throws IOException {
    Result r =
        run(
            "id-" + user,
            null,
            Paths.get("/"),
            Map.of(),
            Duration.ofSeconds(30),
            List.of("id", "-gn", user));
    if (r.exitCode != 0) {
      fail("no such user " + user + ": " + r.output);
    }
    return r.output.strip();
  }

  static String hostArchitecture() throws IOException {
    Result r =
        run(
            "dpkg-architecture",
            null,
            Paths.get("/"),
            Map.of(),
            Duration.ofSeconds(30),
            List.of("dpkg", "--print-architecture"));
    if (r.exitCode != 0) {
      fail("dpkg --print-architecture failed: " + r.output);
    }
    return r.output.strip();
  }

  /**
   * Runs a command to completion, as {@code user} (via runuser) unless that is null, with {@code
   * env} added to the inherited environment. Standard output and error are collected together and
   * copied to a log file in {@link #logDir()}.
   *
   * <p>The output goes through a pipe, not straight into the log file: autopkgtest reopens
   * /dev/stderr with O_TRUNC, which would clobber a file. For another user the pipe is a FIFO owned
   * by that user, because the kernel refuses to reopen a root-owned pipe for anyone else.
   */
  static Result run(
      String name,
      String user,
      Path cwd,
      Map<String, String> env,
      Duration timeout,
      List<String> command)
      throws IOException {
    List<String> argv = new ArrayList<>();
    if (user != null) {
      // runuser keeps most of the environment, but say explicitly what matters.
      argv.addAll(List.of("runuser", "-u", user, "--", "env"));
      env.forEach((k, v) -> argv.add(k + "=" + v));
    }
    argv.addAll(command);

    Path log = logDir().resolve(name.replaceAll("[^A-Za-z0-9._-]", "_") + ".log");
    ProcessBuilder pb =
        new ProcessBuilder(argv)
            .directory(cwd.toFile())
            .redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    pb.environment().putAll(env);

    Path fifoDir = null;
    OutputCollector collector = new OutputCollector(log);
    long start = System.nanoTime();
    Process process;
    try {
      if (user != null) {
        fifoDir = Files.createTempDirectory("e2e-output-");
        Files.setPosixFilePermissions(fifoDir, PosixFilePermissions.fromString("rwx--x--x"));
        Path fifo = fifoDir.resolve("output");
        makeFifo(fifo);
        chownTree(fifo, user);
        // Opening a FIFO blocks until both ends are open, so the reader goes first.
        collector.start(() -> Files.newInputStream(fifo));
        pb.redirectOutput(fifo.toFile());
        process = pb.start();
      } else {
        process = pb.start();
        Process p = process;
        collector.start(p::getInputStream);
      }
      boolean finished;
      try {
        finished = process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        finished = false;
      }
      if (!finished) {
        process.descendants().forEach(ProcessHandle::destroyForcibly);
        process.destroyForcibly();
      }
      // Output is complete once every writer has closed it; a process
      // still holding it is a leak, reported by LeakCheck, so don't wait forever.
      boolean drained = collector.await(Duration.ofSeconds(30));
      Duration elapsed = Duration.ofNanos(System.nanoTime() - start);
      String output =
          collector.output()
              + (drained ? "" : "\n[e2e] output still held open by a leftover process\n");
      Result result = new Result(argv, finished ? process.exitValue() : -1, output, log, elapsed);
      System.out.printf(
          Locale.ROOT,
          "[e2e] %s: exit %d after %.1f s (log %s)%n",
          name,
          result.exitCode,
          elapsed.toMillis() / 1000.0,
          log);
      if (!finished) {
        fail(name + " did not finish within " + timeout + "\n" + result.describe());
      }
      return result;
    } finally {
      if (fifoDir != null) {
        Files.deleteIfExists(fifoDir.resolve("output"));
        Files.deleteIfExists(fifoDir);
      }
    }
  }

  private static void makeFifo(Path fifo) throws IOException {
    Process p =
        new ProcessBuilder("mkfifo", "-m", "600", fifo.toString())
            .redirectErrorStream(true)
            .start();
    try {
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (p.waitFor() != 0) {
        fail("mkfifo " + fifo + " failed: " + out);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      fail("interrupted");
    }
  }

  /** Copies a child's output to a log file and keeps it for assertions. */
  private static final class OutputCollector {
    interface Source {
      InputStream open() throws IOException;
    }

    private final Path log;
    private final ByteArrayOutputStream captured = new ByteArrayOutputStream();
    private final CountDownLatch done = new CountDownLatch(1);
    private volatile IOException failure;

    OutputCollector(Path log) {
      this.log = log;
    }

    void start(Source source) {
      Thread t =
          new Thread(
              () -> {
                byte[] buf = new byte[65536];
                try (InputStream in = source.open();
                    OutputStream file = Files.newOutputStream(log)) {
                  int n;
                  while ((n = in.read(buf)) > 0) {
                    file.write(buf, 0, n);
                    file.flush();
                    synchronized (captured) {
                      captured.write(buf, 0, n);
                    }
                  }
                } catch (IOException e) {
                  failure = e;
                } finally {
                  done.countDown();
                }
              },
              "e2e-output-" + log.getFileName());
      t.setDaemon(true);
      t.start();
    }

    boolean await(Duration limit) {
      try {
        return done.await(limit.toMillis(), TimeUnit.MILLISECONDS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        return false;
      }
    }

    String output() {
      String text;
      synchronized (captured) {
        text = captured.toString(StandardCharsets.UTF_8);
      }
      return failure == null ? text : text + "\n[e2e] reading output failed: " + failure + "\n";
    }
  }

  static final class Result {
    final List<String> command;
    final int exitCode;
    final String output;
    final Path log;
    final Duration elapsed;

    Result(List<String> command, int exitCode, String output, Path log, Duration elapsed) {
      this.command = command;
      this.exitCode = exitCode;
      this.output = output;
      this.log = log;
      this.elapsed = elapsed;
    }

    String tail(int lines) {
      List<String> all = output.lines().toList();
      return String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
    }

    /** For assertion messages: the command, its status and the end of its output. */
    String describe() {
      return "command: "
          + String.join(" ", command)
          + "\nexit status: "
          + exitCode
          + "\nfull log: "
          + log
          + "\n--- last lines of output ---\n"
          + tail(80);
    }
  }
}
