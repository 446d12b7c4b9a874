package org.uchroot.adapter.virt;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.CompletableFuture;
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
 * The server on a real engine and a busybox rootfs, driven as autopkgtest drives it; the commands
 * printed by {@code print-execute-command} are run as autopkgtest runs them, as host processes.
 */
@Tag("integration")
class VirtServerIntegrationTest {

  private static final Pattern SCRATCH = Pattern.compile("ok /tmp/autopkgtest\\.[A-Za-z0-9]{6}");

  private static Path tarball;
  private static Path execClient;

  /**
   * Only the exec clients are this test's own processes: the engine's are checked by the engine's
   * tests, and other builds on the machine run processes named after uchroot too.
   */
  @RegisterExtension
  final LeakCheck leaks =
      new LeakCheck(
          Pattern.compile("uchroot-exec|cli\\.Main exec"), LeakCheck.DEFAULT_UNPACK_PATTERN);

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

  private Conversation open() throws Exception {
    Conversation conversation = new Conversation(config, tarball, List.of(execClient.toString()));
    String scratch = conversation.ask("open");
    assertTrue(SCRATCH.matcher(scratch).matches(), scratch);
    return conversation;
  }

  @Test
  void opensWithAScratchDirectoryVisibleFromTheHost() throws Exception {
    try (Conversation c = open()) {
      List<String> caps = Conversation.words(c.ask("capabilities"));
      assertEquals(
          List.of(
              "revert",
              "revert-full-system",
              "root-on-testbed",
              "suggested-normal-user=uchroot",
              "uchroot-status",
              "uchroot-interrupt"),
          caps.subList(0, 6));
      assertEquals(7, caps.size(), caps.toString());
      Path downtmpHost = Path.of(downtmpHost(c));
      assertTrue(Files.isDirectory(downtmpHost), downtmpHost.toString());
      assertEquals(
          "rwxrwxrwx", PosixFilePermissions.toString(Files.getPosixFilePermissions(downtmpHost)));
      assertEquals("ok state=open jobs=0 interrupts=0", c.ask("status"));
    }
  }

  @Test
  void theExecuteCommandRunsCommandsInTheTestbed() throws Exception {
    try (Conversation c = open()) {
      List<String> exec = executeCommand(c);
      assertEquals(execClient.toString(), exec.get(0));
      Path socket = Path.of(exec.get(1));
      assertEquals(
          "rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(socket)));
      assertEquals(
          "rwx------",
          PosixFilePermissions.toString(Files.getPosixFilePermissions(socket.getParent())));

      assertEquals(0, run(exec, "", "true").status);
      assertEquals(3, run(exec, "", "sh", "-c", "exit 3").status);
      assertEquals(143, run(exec, "", "sh", "-c", "kill -TERM $$").status);
      Result relayed = run(exec, "hello\nworld\n", "sh", "-c", "cat; echo oops >&2; id -u");
      assertEquals(0, relayed.status);
      assertEquals("hello\nworld\n0\n", relayed.out);
      assertEquals("oops\n", relayed.err);
      Result missing = run(exec, "", "no-such-command");
      assertEquals(127, missing.status);

      byte[] big = new byte[3 << 20];
      new Random(7).nextBytes(big);
      Result echoed = run(exec, big, "cat");
      assertEquals(0, echoed.status);
      assertTrue(Arrays.equals(big, echoed.outBytes), "3 MiB through stdin and stdout");
    }
  }

  @Test
  void copiesFilesBothWaysKeepingTheExecutableBit() throws Exception {
    try (Conversation c = open()) {
      List<String> exec = executeCommand(c);
      Path script = host.resolve("script.sh");
      Files.writeString(script, "#!/bin/sh\necho from the host\n");
      Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
      Path plain = host.resolve("plain file");
      Files.writeString(plain, "plain\n");

      assertEquals("ok", c.ask("copydown " + script + " /tmp/script.sh"));
      assertEquals("ok", c.ask("copydown " + quote(plain.toString()) + " /tmp/plain%20file"));
      assertEquals("from the host\n", run(exec, "", "/tmp/script.sh").out);
      assertEquals(0, run(exec, "", "test", "-x", "/tmp/script.sh").status);
      assertEquals(1, run(exec, "", "test", "-x", "/tmp/plain file").status);
      assertEquals("plain\n", run(exec, "", "cat", "/tmp/plain file").out);

      run(
          exec,
          "",
          "sh",
          "-c",
          "printf 'up\\n' >/tmp/up; cp /tmp/up /tmp/up.x; chmod 755 /tmp/up.x");
      assertEquals("ok", c.ask("copyup /tmp/up " + host.resolve("up")));
      assertEquals("ok", c.ask("copyup /tmp/up.x " + host.resolve("up.x")));
      assertEquals("up\n", Files.readString(host.resolve("up")));
      assertFalse(Files.isExecutable(host.resolve("up")));
      assertEquals("up\n", Files.readString(host.resolve("up.x")));
      assertTrue(Files.isExecutable(host.resolve("up.x")));
    }
  }

  @Test
  void copiesDirectoriesBothWays() throws Exception {
    try (Conversation c = open()) {
      List<String> exec = executeCommand(c);
      Path tree = Files.createDirectories(host.resolve("tree/sub"));
      Files.writeString(tree.resolve("a"), "a\n");
      Path tool = Files.writeString(host.resolve("tree/tool"), "#!/bin/sh\necho tool\n");
      Files.setPosixFilePermissions(tool, PosixFilePermissions.fromString("rwxr-xr-x"));

      assertEquals("ok", c.ask("copydown " + host.resolve("tree") + "/ /tmp/tree/"));
      assertEquals("a\n", run(exec, "", "cat", "/tmp/tree/sub/a").out);
      assertEquals("tool\n", run(exec, "", "/tmp/tree/tool").out);

      run(
          exec,
          "",
          "sh",
          "-c",
          "mkdir -p /tmp/made/deep; echo x >/tmp/made/deep/x;"
              + " echo run >/tmp/made/run; chmod 700 /tmp/made/run");
      assertEquals("ok", c.ask("copyup /tmp/made/ " + host.resolve("made") + "/"));
      assertEquals("x\n", Files.readString(host.resolve("made/deep/x")));
      assertEquals(
          "rwx------",
          PosixFilePermissions.toString(Files.getPosixFilePermissions(host.resolve("made/run"))));
    }
  }

  /**
   * A testbed can point a symlink anywhere; copies resolve it inside the testbed, so a host file at
   * the same path is never read or written. The sentinel is in that host file only.
   */
  @Test
  void copiesNeverFollowTestbedSymlinksToHostFiles() throws Exception {
    String sentinel = "sentinel-" + UUID.randomUUID();
    Path secret = host.resolve("secret");
    Files.writeString(secret, sentinel + "\n");
    try (Conversation c = open()) {
      List<String> exec = executeCommand(c);
      String dir = secret.getParent().toString();
      run(
          exec,
          "",
          "sh",
          "-c",
          "mkdir -p '"
              + dir
              + "' && echo testbed-version >'"
              + secret
              + "'"
              + " && ln -s '"
              + secret
              + "' /tmp/link && ln -s /etc/shadow /tmp/shadow"
              + " && mkdir /tmp/links && ln -s '"
              + secret
              + "' /tmp/links/secret"
              + " && ln -s /etc /tmp/links/etc");

      assertEquals("ok", c.ask("copyup /tmp/link " + host.resolve("link-copy")));
      assertEquals("testbed-version\n", Files.readString(host.resolve("link-copy")));
      assertEquals("ok", c.ask("copyup /tmp/shadow " + host.resolve("shadow-copy")));
      String shadow = Files.readString(host.resolve("shadow-copy"));
      assertEquals(run(exec, "", "cat", "/etc/shadow").out, shadow);
      assertTrue(shadow.startsWith("root:*:1:0:99999:7:::\n"), shadow);
      assertEquals("ok", c.ask("copyup /tmp/links/ " + host.resolve("links") + "/"));
      assertTrue(Files.isSymbolicLink(host.resolve("links/secret")));
      assertTrue(Files.isSymbolicLink(host.resolve("links/etc")));

      Path incoming = Files.writeString(host.resolve("incoming"), "written down\n");
      assertEquals("ok", c.ask("copydown " + incoming + " /tmp/link"));
      // A copydown replaces what was at its destination, a symlink too, as the reference's rm -rf.
      assertEquals("written down\n", run(exec, "", "cat", "/tmp/link").out);
      assertEquals(0, run(exec, "", "sh", "-c", "test -f /tmp/link && ! test -L /tmp/link").status);
      assertEquals("testbed-version\n", run(exec, "", "cat", secret.toString()).out);
      assertEquals(sentinel + "\n", Files.readString(secret));

      try (Stream<Path> copies = Files.walk(host)) {
        for (Path p : copies.filter(p -> !p.equals(secret)).toList()) {
          if (Files.isRegularFile(p, LinkOption.NOFOLLOW_LINKS)) {
            assertFalse(Files.readString(p).contains(sentinel), p + " has the host's secret");
          }
        }
      }
    }
  }

  @Test
  void aCopyFailingInTheTestbedEndsTheServerAsTheReference() throws Exception {
    try (Conversation c = open()) {
      String downtmpHost = downtmpHost(c);
      c.send("copyup /nonexistent " + host.resolve("x"));
      assertEquals(12, c.exitStatus());
      assertTrue(
          c.messages().contains("<VirtSubproc>: failure: copyup /nonexistent " + host.resolve("x")),
          c.messages());
      assertFalse(Files.exists(Path.of(downtmpHost)));
    }
  }

  /** Reading a FIFO would keep the copy waiting for a writer for ever: it is refused. */
  @Test
  void aCopyupOfAFifoFailsInsteadOfWaiting() throws Exception {
    try (Conversation c = open()) {
      assertEquals(0, run(executeCommand(c), "", "mkfifo", "/tmp/fifo").status);
      c.send("copyup /tmp/fifo " + host.resolve("x"));
      assertEquals(12, c.exitStatus());
      assertTrue(c.messages().contains("/tmp/fifo: not a regular file"), c.messages());
    }
  }

  @Test
  void aMissingHostFileIsAnUnexpectedErrorAsInTheReference() throws Exception {
    try (Conversation c = open()) {
      String downtmpHost = downtmpHost(c);
      c.send("copydown /nonexistent /tmp/x");
      assertEquals(16, c.exitStatus());
      assertTrue(
          c.messages()
              .endsWith(
                  "Unexpected error: copydown /nonexistent /tmp/x: /nonexistent:"
                      + " No such file or directory\n"),
          c.messages());
      assertFalse(Files.exists(Path.of(downtmpHost)));
    }
  }

  @Test
  void revertKeepsTheScratchPathAndTheExecSocket() throws Exception {
    try (Conversation c = open()) {
      List<String> exec = executeCommand(c);
      String scratch = downtmpHost(c);
      run(exec, "", "sh", "-c", "touch /etc/changed /tmp/autopkgtest.*/left");
      String reverted = c.ask("revert");
      assertTrue(SCRATCH.matcher(reverted).matches(), reverted);
      assertEquals(scratch, downtmpHost(c));
      assertEquals(exec, executeCommand(c));
      assertEquals(1, run(exec, "", "test", "-e", "/etc/changed").status);
      Result ls = run(exec, "", "sh", "-c", "ls -d /tmp/autopkgtest.*; ls -A /tmp/autopkgtest.*");
      assertEquals(reverted.substring(3) + "\n", ls.out);
    }
  }

  @Test
  void anAptProxyIsSetAtOpenAndAgainAfterEachRevert() throws Exception {
    Path withApt = withAptConfDirectory();
    AptProxy proxy = new AptProxy("http://127.0.0.1:3142/");
    try (Conversation c =
        new Conversation(config, withApt, List.of(execClient.toString()), Optional.of(proxy))) {
      assertTrue(SCRATCH.matcher(c.ask("open")).matches());
      List<String> exec = executeCommand(c);
      String expected =
          String.join("\n", proxy.command().subList(4, proxy.command().size())) + "\n";
      assertEquals(expected, run(exec, "", "cat", AptProxy.CONF).out);
      run(exec, "", "rm", AptProxy.CONF);
      assertTrue(SCRATCH.matcher(c.ask("revert")).matches());
      assertEquals(expected, run(exec, "", "cat", AptProxy.CONF).out);
      assertTrue(
          run(exec, "", "cat", AptProxy.CONF).out.contains("Acquire::https::Proxy \"DIRECT\";"));
    }
  }

  @Test
  void aTestbedWithoutAptIsLeftAsItIsByAnAptProxy() throws Exception {
    try (Conversation c =
        new Conversation(
            config,
            tarball,
            List.of(execClient.toString()),
            Optional.of(new AptProxy("http://127.0.0.1:3142/")))) {
      assertTrue(SCRATCH.matcher(c.ask("open")).matches());
      assertEquals(1, run(executeCommand(c), "", "test", "-e", "/etc/apt").status);
    }
  }

  /** The busybox rootfs with the directory apt reads its configuration from. */
  private Path withAptConfDirectory() throws Exception {
    Path tree = Files.createDirectories(host.resolve("apt-tree/etc/apt/apt.conf.d"));
    Path copy = host.resolve("with-apt.tar");
    Files.copy(tarball, copy);
    Process append =
        new ProcessBuilder(
                "tar",
                "-rf",
                copy.toString(),
                "-C",
                host.resolve("apt-tree").toString(),
                "--owner=0",
                "--group=0",
                "./etc/apt")
            .inheritIO()
            .start();
    assertEquals(0, append.waitFor());
    assertTrue(Files.isDirectory(tree));
    return copy;
  }

  @Test
  void closeRemovesTheTestbedAndTheSocket() throws Exception {
    try (Conversation c = open()) {
      String downtmpHost = downtmpHost(c);
      Path socket = Path.of(executeCommand(c).get(1));
      assertEquals("ok", c.ask("close"));
      assertFalse(Files.exists(Path.of(downtmpHost)), downtmpHost);
      assertFalse(Files.exists(socket, LinkOption.NOFOLLOW_LINKS), socket.toString());
      assertEquals("ok state=closed jobs=0 interrupts=0", c.ask("status"));
      assertTrue(SCRATCH.matcher(c.ask("open")).matches());
      assertEquals("ok", c.ask("close"));
    }
  }

  @Test
  void endOfFileClosesTheTestbedAndExitsTwelve() throws Exception {
    try (Conversation c = open()) {
      String downtmpHost = downtmpHost(c);
      Path socket = Path.of(executeCommand(c).get(1));
      c.endOfFile();
      assertEquals(12, c.exitStatus());
      assertTrue(c.messages().endsWith("<VirtSubproc>: failure: end of file - caller quit?\n"));
      assertFalse(Files.exists(Path.of(downtmpHost)));
      assertFalse(Files.exists(socket));
    }
  }

  @Test
  void anUnknownCommandClosesTheTestbedAndExitsTwelve() throws Exception {
    try (Conversation c = open()) {
      String downtmpHost = downtmpHost(c);
      c.send("frobnicate");
      assertEquals(12, c.exitStatus());
      assertTrue(c.messages().endsWith("<VirtSubproc>: failure: unknown command `frobnicate'\n"));
      assertFalse(Files.exists(Path.of(downtmpHost)));
      assertEquals(List.of(), c.unread());
    }
  }

  @Test
  void interruptStopsTheCommandsAndKeepsTheTestbed() throws Exception {
    try (Conversation c = open()) {
      List<String> exec = executeCommand(c);
      CompletableFuture<Result> sleeper =
          CompletableFuture.supplyAsync(() -> runUnchecked(exec, "", "sleep", "600"));
      String status = "";
      for (int i = 0; i < 100 && !status.contains("jobs=1"); i++) {
        Thread.sleep(100);
        status = c.ask("status");
      }
      assertEquals("ok state=open jobs=1 interrupts=0", status);
      assertEquals("ok jobs=1", c.ask("interrupt"));
      assertEquals(130, sleeper.get(60, TimeUnit.SECONDS).status);
      assertEquals("ok state=interrupted jobs=0 interrupts=1", c.ask("status"));
      assertEquals(0, run(exec, "", "true").status);
    }
  }

  /** A failing exec says why in a bounded line, however long the program's name. */
  @Test
  void aProgramNameOfAnyLengthFailsWith126AndABoundedMessage() throws Exception {
    try (Conversation c = open()) {
      List<String> exec = executeCommand(c);
      // 131,000: about the most one argument of execve may hold (MAX_ARG_STRLEN).
      for (int length : new int[] {65_000, 66_000, 131_000}) {
        Result result = run(exec, "", "a".repeat(length));
        assertEquals(126, result.status, "a name of " + length + " bytes");
        assertTrue(result.err.contains("File name too long"), result.err);
        assertTrue(result.err.length() < 2048, "a message of " + result.err.length() + " bytes");
      }
    }
  }

  /** Without a terminal (as under a build) the reference logs why and answers ok; so does this. */
  @Test
  void shellWithoutATerminalAnswersOk() throws Exception {
    try (Conversation c = open()) {
      assertEquals("ok", c.ask("shell /tmp A=1"));
      assertEquals("ok state=open jobs=0 interrupts=0", c.ask("status"));
    }
  }

  private static String downtmpHost(Conversation c) throws Exception {
    return Conversation.words(c.ask("capabilities")).stream()
        .filter(w -> w.startsWith("downtmp-host="))
        .map(w -> w.substring("downtmp-host=".length()))
        .findFirst()
        .orElseThrow();
  }

  /** The answer of print-execute-command, split and unquoted as autopkgtest does. */
  private static List<String> executeCommand(Conversation c) throws Exception {
    String answer = c.ask("print-execute-command");
    assertTrue(answer.startsWith("ok ") && answer.indexOf(' ', 3) < 0, answer);
    List<String> program = new ArrayList<>();
    for (String part : answer.substring(3).split(",")) {
      program.add(UrlQuoting.unquote(part));
    }
    return program;
  }

  private static String quote(String path) {
    return UrlQuoting.quote(path);
  }

  private record Result(int status, byte[] outBytes, String out, String err) {}

  private Result runUnchecked(List<String> program, String stdin, String... argv) {
    try {
      return run(program, stdin, argv);
    } catch (Exception e) {
      throw new IllegalStateException(e);
    }
  }

  private Result run(List<String> program, String stdin, String... argv) throws Exception {
    return run(program, stdin.getBytes(StandardCharsets.UTF_8), argv);
  }

  /** Runs the execute command with {@code argv} as a host process, as autopkgtest does. */
  private Result run(List<String> program, byte[] stdin, String... argv) throws Exception {
    List<String> command = new ArrayList<>(program);
    command.addAll(List.of(argv));
    ProcessBuilder builder = new ProcessBuilder(command);
    leaks.tag(builder.environment());
    Process process = builder.start();
    CompletableFuture<byte[]> out = readAll(process.getInputStream());
    CompletableFuture<byte[]> err = readAll(process.getErrorStream());
    try (var in = process.getOutputStream()) {
      in.write(stdin);
    }
    if (!process.waitFor(120, TimeUnit.SECONDS)) {
      process.destroyForcibly();
      throw new AssertionError("still running: " + command);
    }
    byte[] outBytes = out.get();
    return new Result(
        process.exitValue(),
        outBytes,
        new String(outBytes, StandardCharsets.UTF_8),
        new String(err.get(), StandardCharsets.UTF_8));
  }

  private static CompletableFuture<byte[]> readAll(InputStream in) {
    return CompletableFuture.supplyAsync(
        () -> {
          ByteArrayOutputStream bytes = new ByteArrayOutputStream();
          try (in) {
            in.transferTo(bytes);
          } catch (IOException e) {
            throw new IllegalStateException(e);
          }
          return bytes.toByteArray();
        });
  }
}
