package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PipedInputStream;
import java.io.PipedOutputStream;
import java.io.UncheckedIOException;
import java.net.SocketException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.actors.ExitStatus;
import org.uchroot.actors.GracePeriods;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.RootfsMode;
import org.uchroot.actors.SessionSpec;

/**
 * The session's job server: statuses, concurrency, large stdin, and that a job ends with nothing
 * left however its client goes away. Some tests speak the job server's frames directly, as a client
 * that misbehaves would.
 */
@Tag("integration")
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
abstract class JobServerIntegrationCases {

  /** Every test ends with its testbeds gone: no mount, process or directory of theirs is left. */
  @RegisterExtension final LeakCheck leaks = new LeakCheck();

  private Engine engine;
  private Session session;

  abstract RootfsMode mode();

  @BeforeAll
  void startEngine() throws Exception {
    // Made before the leak check's first look: the fixture stays for every test.
    BusyboxRootfs.tarball();
    engine =
        Engine.start(
            EngineConfig.load()
                .withRootfsMode(mode())
                .withGrace(new GracePeriods(Duration.ofMillis(500), Duration.ofMillis(500))));
  }

  @AfterAll
  void stopEngine() {
    engine.close();
  }

  @BeforeEach
  void open() throws Exception {
    session = engine.open(SessionSpec.of(BusyboxRootfs.tarball())).toCompletableFuture().join();
  }

  @AfterEach
  void close() throws Exception {
    Path socket = jobSocket();
    session.close().toCompletableFuture().join();
    assertFalse(
        Files.exists(socket, LinkOption.NOFOLLOW_LINKS), "the job socket outlived the session");
  }

  private ExitStatus run(CapturedStdio io, String... argv) {
    return session.run(List.of(argv), io).toCompletableFuture().join();
  }

  @Test
  void exitStatusesAreTheCommandsOwn() {
    assertEquals(new ExitStatus.Exited(0), run(new CapturedStdio(), "true"));
    assertEquals(new ExitStatus.Exited(7), run(new CapturedStdio(), "sh", "-c", "exit 7"));
    CapturedStdio missing = new CapturedStdio();
    assertEquals(new ExitStatus.Exited(127), run(missing, "no-such-command"));
    assertTrue(missing.err().contains("no-such-command"), missing.err());
    CapturedStdio notExecutable = new CapturedStdio();
    assertEquals(new ExitStatus.Exited(126), run(notExecutable, "/etc/passwd"));
    assertTrue(notExecutable.err().contains("/etc/passwd"), notExecutable.err());
    ExitStatus terminated = run(new CapturedStdio(), "sh", "-c", "kill -TERM $$");
    assertEquals(new ExitStatus.Signalled(15), terminated);
    assertEquals(143, terminated.shellStatus());
  }

  @Test
  void hostFilesAreTheCommandsOwnStdinAndStdout(@TempDir Path temp) throws Exception {
    byte[] data = new byte[3 << 20];
    new Random(7).nextBytes(data);
    Path source = Files.write(temp.resolve("source"), data);
    Path target = Files.writeString(temp.resolve("target"), "old content\n".repeat(500_000));
    CapturedStdio io = CapturedStdio.withHostFiles(source, target);
    String whatFdsAre = "i=$(readlink /proc/$$/fd/0); o=$(readlink /proc/$$/fd/1); echo $i $o >&2";
    assertEquals(new ExitStatus.Exited(0), run(io, "sh", "-c", "cat; " + whatFdsAre));
    assertArrayEquals(data, Files.readAllBytes(target));
    assertEquals("", io.out(), "the command's output went to the file alone");
    CapturedStdio missing = CapturedStdio.withHostFiles(temp.resolve("missing"), null);
    if (Host.idMapping(EngineConfig.load()).jobServerOpensHostFiles()) {
      // The command holds the files themselves, not pipes from the job server.
      assertEquals(source + " " + target + "\n", io.err());
      assertEquals(new ExitStatus.Exited(125), run(missing, "cat"));
      assertTrue(missing.err().contains("missing: No such file or directory"), missing.err());
    } else {
      // Root's testbed root may not open the host's files: the engine relays them.
      assertTrue(io.err().matches("pipe:\\S+ pipe:\\S+\n"), io.err());
      CompletionException failed =
          assertThrows(CompletionException.class, () -> run(missing, "cat"));
      assertTrue(failed.getCause().getMessage().contains("missing: "), failed.getMessage());
    }
  }

  @Test
  void twentyJobsRunAtOnceEachWithItsStdin() throws Exception {
    // Each job waits until all twenty have started, so they can only finish by running together;
    // then it reads its stdin, which needs a pump while twenty readers wait for output.
    List<CapturedStdio> outputs = new ArrayList<>();
    List<Job> jobs = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      CapturedStdio io = new CapturedStdio("input " + i + "\n");
      outputs.add(io);
      jobs.add(
          session.start(
              List.of(
                  "sh",
                  "-c",
                  "mkdir -p /tmp/together && touch /tmp/together/"
                      + i
                      + "; n=0; "
                      + "while [ $(ls /tmp/together | wc -l) -lt 20 ] && [ $n -lt 600 ]; do "
                      + "sleep 0.05; n=$((n+1)); done; "
                      + "read line; echo job "
                      + i
                      + " saw $(ls /tmp/together | wc -l), $line; "
                      + "exit "
                      + i),
              io));
    }
    for (int i = 0; i < 20; i++) {
      assertEquals(new ExitStatus.Exited(i), jobs.get(i).result().toCompletableFuture().join());
      assertEquals("job " + i + " saw 20, input " + i + "\n", outputs.get(i).out());
    }
    assertEquals(List.of(), childrenOf(jobServerPid()), "the job server left children unreaped");
  }

  @Test
  void tenMegabytesOfStdinArriveIntact() throws Exception {
    byte[] data = new byte[10 << 20];
    new Random(42).nextBytes(data);
    Bytes io = new Bytes(data);
    assertEquals(
        new ExitStatus.Exited(0), session.run(List.of("cat"), io).toCompletableFuture().join());
    assertArrayEquals(data, io.out.toByteArray());

    Bytes digest = new Bytes(data);
    assertEquals(
        new ExitStatus.Exited(0),
        session.run(List.of("md5sum"), digest).toCompletableFuture().join());
    String expected = HexFormat.of().formatHex(MessageDigest.getInstance("MD5").digest(data));
    assertEquals(expected + "  -\n", digest.out.toString(StandardCharsets.UTF_8));
  }

  @Test
  void aDaemonOfAJobEndsWithTheJob() throws Exception {
    String tag = "uchroot-test-daemon-" + System.nanoTime();
    CapturedStdio io = new CapturedStdio();
    // The daemon's shell keeps the tag in its command line while it waits for its sleep.
    assertEquals(
        new ExitStatus.Exited(0),
        run(
            io,
            "sh",
            "-c",
            "setsid sh -c 'touch /daemon-up; sleep 300; : "
                + tag
                + "' </dev/null >/dev/null 2>&1 & "
                + "while [ ! -e /daemon-up ]; do sleep 0.05; done; echo started"));
    assertEquals("started\n", io.out());
    assertEquals(List.of(), InterruptIntegrationCases.processesNamed(tag));
  }

  @Test
  void aClientThatDisconnectsEarlyHasItsJobKilled() throws Exception {
    String tag = "uchroot-test-early-" + System.nanoTime();
    try (SocketChannel channel = connect()) {
      send(
          channel,
          'a',
          argv(
              "sh",
              "-c",
              "setsid sh -c 'sleep 300; : "
                  + tag
                  + "' </dev/null >/dev/null 2>&1 & "
                  + "echo started; sleep 300; : "
                  + tag));
      assertEquals("o:started\n", readFrame(channel));
      awaitProcesses(tag, 3); // the job's pid 1, the job's shell, the daemon
    }
    awaitProcesses(tag, 0);
    // The job's pid 1 may still be on its way out: its exit waits for the rest of the job.
    long server = jobServerPid();
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!childrenOf(server).isEmpty()) {
      assertTrue(System.nanoTime() < deadline, "the job server left children unreaped");
      Thread.sleep(20);
    }
  }

  @Test
  void aKillFrameEndsTheJobAtOnceAndTheStatusFollows() throws Exception {
    String tag = "uchroot-test-kill-" + System.nanoTime();
    try (SocketChannel channel = connect()) {
      send(channel, 'a', argv("sh", "-c", "trap '' INT TERM; echo armed; sleep 300; : " + tag));
      assertEquals("o:armed\n", readFrame(channel));
      send(channel, 's', new byte[] {2}); // ignored by the job, and no status comes of it
      send(channel, 'k', new byte[0]);
      assertEquals("x:137", readFrame(channel));
      assertEquals("eof", readFrame(channel));
    }
    // 'x' is written once the job's pid 1 has been reaped, so nothing of it is left by now.
    assertEquals(List.of(), InterruptIntegrationCases.processesNamed(tag));
  }

  @Test
  void aKillReachesAJobThatDoesNotReadItsStdin() throws Exception {
    // Signals wait behind the stdin the job does not read; the kill does not.
    InputStream endless =
        new InputStream() {
          @Override
          public int read() {
            return 'y';
          }

          @Override
          public int read(byte[] b, int off, int len) {
            java.util.Arrays.fill(b, off, off + len, (byte) 'y');
            return len;
          }
        };
    Bytes io = new Bytes(endless);
    Job job = session.start(List.of("sh", "-c", "trap '' INT TERM; echo armed; sleep 300"), io);
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    while (!io.out.toString(StandardCharsets.UTF_8).contains("armed")) {
      assertTrue(System.nanoTime() < deadline, "the job never started");
      Thread.sleep(20);
    }
    assertEquals(1, session.interrupt().toCompletableFuture().join());
    assertEquals(new ExitStatus.Signalled(9), job.result().toCompletableFuture().join());
  }

  @Test
  void aStrangerToTheProtocolGetsAFailureAndNoJob() throws Exception {
    try (SocketChannel channel = connect()) {
      send(channel, 'z', new byte[0]);
      assertEquals("f:protocol error: the first frame must be a command", readFrame(channel));
      assertEquals("x:125", readFrame(channel));
    }
  }

  @Test
  void framesBeyondTheLimitsAreRefusedWithAReason() throws Exception {
    try (SocketChannel channel = connect()) {
      sendHeader(channel, 'a', (16 << 20) + 1);
      assertEquals(
          "f:protocol error: the command is longer than the limit of 16777216 bytes",
          readFrame(channel));
      assertEquals("x:125", readFrame(channel));
    }
    try (SocketChannel channel = connect()) {
      send(channel, 'a', new byte[(1 << 20) + 1]);
      assertEquals(
          "f:protocol error: the command has more than 1048576 arguments", readFrame(channel));
      assertEquals("x:125", readFrame(channel));
    }
    try (SocketChannel channel = connect()) {
      sendHeader(channel, '<', 4096);
      assertEquals(
          "f:protocol error: a host file's name must have 1 to 4095 bytes", readFrame(channel));
      assertEquals("x:125", readFrame(channel));
    }
  }

  /**
   * Hostile clients: connections of random frames (any type, declared lengths up to far beyond
   * every limit, payloads cut short), each answered or closed within a bound, never left hanging;
   * the job server then still runs jobs.
   */
  @Test
  void randomFramesEndWithinABoundAndTheServerStaysUp() throws Exception {
    Random random = new Random(11);
    byte[] types = {'<', '>', 'a', 'i', 'c', 's', 'k', 'z', 0, (byte) 0xff};
    for (int i = 0; i < 300; i++) {
      try (SocketChannel channel = connect()) {
        ByteArrayOutputStream frames = new ByteArrayOutputStream();
        for (int f = random.nextInt(4); f >= 0; f--) {
          int declared =
              random.nextInt(4) == 0
                  ? Integer.MAX_VALUE - random.nextInt(1000)
                  : random.nextInt(300);
          byte[] payload = new byte[Math.min(declared, random.nextInt(300))];
          random.nextBytes(payload);
          ByteBuffer head = ByteBuffer.allocate(5).put(types[random.nextInt(types.length)]);
          frames.writeBytes(head.putInt(declared).array());
          frames.writeBytes(payload);
        }
        ByteBuffer all = ByteBuffer.wrap(frames.toByteArray());
        try {
          while (all.hasRemaining()) {
            channel.write(all);
          }
          channel.shutdownOutput();
        } catch (IOException e) {
          continue; // the job server closed first: an end too
        }
        awaitEnd(channel, Duration.ofSeconds(10), "connection " + i);
      }
    }
    assertEquals(new ExitStatus.Exited(0), run(new CapturedStdio(), "true"));
  }

  /** Reads until the job server closes the connection, failing if it does not within limit. */
  private static void awaitEnd(SocketChannel channel, Duration limit, String what)
      throws IOException {
    channel.configureBlocking(false);
    try (Selector selector = Selector.open()) {
      channel.register(selector, SelectionKey.OP_READ);
      long deadline = System.nanoTime() + limit.toNanos();
      ByteBuffer buffer = ByteBuffer.allocate(1 << 16);
      while (readOrReset(channel, buffer.clear()) >= 0) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          throw new AssertionError(what + ": no end within " + limit);
        }
        selector.select(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
        selector.selectedKeys().clear();
      }
    }
  }

  /** A reset (the job server closed with input unread) is an end, as end of file is. */
  private static int readOrReset(SocketChannel channel, ByteBuffer buffer) throws IOException {
    try {
      return channel.read(buffer);
    } catch (SocketException e) {
      return -1;
    }
  }

  // --- speaking the job server's frames directly ---

  private SocketChannel connect() throws IOException {
    SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
    channel.connect(UnixDomainSocketAddress.of(jobSocket()));
    return channel;
  }

  static byte[] argv(String... args) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (String arg : args) {
      out.writeBytes(arg.getBytes(StandardCharsets.UTF_8));
      out.write(0);
    }
    return out.toByteArray();
  }

  /** A frame's header alone, declaring {@code length} bytes. */
  private static void sendHeader(SocketChannel channel, char type, int length) throws IOException {
    ByteBuffer head = ByteBuffer.allocate(5).put((byte) type).putInt(length).flip();
    while (head.hasRemaining()) {
      channel.write(head);
    }
  }

  static void send(SocketChannel channel, char type, byte[] payload) throws IOException {
    ByteBuffer frame = ByteBuffer.allocate(5 + payload.length);
    frame.put((byte) type).putInt(payload.length).put(payload).flip();
    while (frame.hasRemaining()) {
      channel.write(frame);
    }
  }

  /** The next frame as "type:payload" (a status as its number), or "eof". */
  private static String readFrame(SocketChannel channel) throws IOException {
    ByteBuffer head = ByteBuffer.allocate(5);
    while (head.hasRemaining()) {
      if (channel.read(head) < 0) {
        return "eof";
      }
    }
    ByteBuffer payload = ByteBuffer.allocate(head.getInt(1));
    while (payload.hasRemaining()) {
      if (channel.read(payload) < 0) {
        return "eof";
      }
    }
    char type = (char) head.get(0);
    return type == 'x'
        ? "x:" + (payload.get(0) & 0xff)
        : type + ":" + new String(payload.array(), StandardCharsets.UTF_8);
  }

  @Test
  void aTerminalIsTheCommandsControllingTerminalForAllThreeStreams() throws IOException {
    TerminalStdio io = new TerminalStdio(new JobStdio.TerminalSize(33, 101));
    io.keys.close(); // the command reads nothing; the terminal stays
    String check = "tty; stty size; [ -t 0 ] && [ -t 2 ] && echo stderr is the terminal >&2";
    ExitStatus status = session.run(List.of("sh", "-c", check), io).toCompletableFuture().join();
    assertEquals(new ExitStatus.Exited(0), status, () -> io.screen() + io.err);
    assertEquals("/dev/pts/0\n33 101\nstderr is the terminal\n", io.screen().replace("\r\n", "\n"));
    assertEquals(0, io.err.size(), "the terminal is stderr too");
  }

  @Test
  void theCommandFollowsTheTerminalsSize() throws Exception {
    TerminalStdio io = new TerminalStdio(new JobStdio.TerminalSize(24, 80));
    // The shell waits in short steps, so that its trap runs soon after the signal.
    String script = "trap 'stty size; exit 0' WINCH; echo ready; while :; do sleep 0.05; done";
    var status = session.run(List.of("sh", "-c", script), io).toCompletableFuture();
    io.awaitScreen("ready");
    io.resize(new JobStdio.TerminalSize(50, 132));
    assertEquals(new ExitStatus.Exited(0), status.get(30, TimeUnit.SECONDS));
    io.keys.close();
    assertEquals("ready\n50 132\n", io.screen().replace("\r\n", "\n"));
  }

  @Test
  void ctrlCOnTheTerminalInterruptsTheCommandAndNothingElse() throws Exception {
    TerminalStdio io = new TerminalStdio(new JobStdio.TerminalSize(24, 80));
    var status = session.run(List.of("sh", "-c", "echo ready; exec cat"), io).toCompletableFuture();
    io.awaitScreen("ready");
    io.keys.write("typed\r".getBytes(StandardCharsets.US_ASCII));
    io.awaitScreen("typed\r\ntyped\r\n"); // the terminal's echo, then cat's copy
    io.keys.write(3); // Ctrl+C
    io.keys.flush();
    assertEquals(new ExitStatus.Signalled(2), status.get(30, TimeUnit.SECONDS));
    io.keys.close();
    CapturedStdio after = new CapturedStdio();
    assertEquals(new ExitStatus.Exited(0), run(after, "echo", "still here"));
    assertEquals("still here\n", after.out());
  }

  // --- finding the session's job server from the host ---

  private long jobServerPid() {
    return SessionProcesses.jobServerOf(session.rootfs()).pid();
  }

  private Path jobSocket() {
    return Path.of(
        SessionProcesses.option(SessionProcesses.commandLine(jobServerPid()), "--socket"));
  }

  private static List<String> childrenOf(long pid) throws IOException {
    Path children = Path.of("/proc", Long.toString(pid), "task", Long.toString(pid), "children");
    String text = Files.readString(children).trim();
    return text.isEmpty() ? List.of() : List.of(text.split(" "));
  }

  private static void awaitProcesses(String tag, int count) throws Exception {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
    List<String> found;
    while ((found = InterruptIntegrationCases.processesNamed(tag)).size() != count) {
      assertTrue(
          System.nanoTime() < deadline, "expected " + count + " processes with the tag: " + found);
      Thread.sleep(20);
    }
  }

  /** A caller's terminal: keys typed into a pipe, the screen captured, resizes on demand. */
  private static final class TerminalStdio implements JobStdio, JobStdio.Terminal {
    final PipedOutputStream keys = new PipedOutputStream();
    private final PipedInputStream typed;
    final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private final ByteArrayOutputStream screen = new ByteArrayOutputStream();
    private final TerminalSize size;
    private final CompletableFuture<Consumer<TerminalSize>> watcher = new CompletableFuture<>();

    TerminalStdio(TerminalSize size) {
      this.size = size;
      try {
        typed = new PipedInputStream(keys);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }

    @Override
    public Optional<Terminal> terminal() {
      return Optional.of(this);
    }

    @Override
    public TerminalSize size() {
      return size;
    }

    @Override
    public void onResize(Consumer<TerminalSize> resized) {
      watcher.complete(resized);
    }

    void resize(TerminalSize newSize) throws Exception {
      watcher.get(30, TimeUnit.SECONDS).accept(newSize);
    }

    String screen() {
      synchronized (screen) {
        return screen.toString(StandardCharsets.UTF_8);
      }
    }

    /** Waits until the screen shows {@code text}; the job's own end bounds the wait. */
    void awaitScreen(String text) throws InterruptedException {
      synchronized (screen) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
        while (!screen.toString(StandardCharsets.UTF_8).contains(text)) {
          long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
          assertTrue(left > 0, "the screen never showed " + text + ": " + screen);
          screen.wait(left);
        }
      }
    }

    @Override
    public InputStream stdin() {
      return typed;
    }

    @Override
    public OutputStream stdout() {
      return new OutputStream() {
        @Override
        public void write(int b) {
          write(new byte[] {(byte) b}, 0, 1);
        }

        @Override
        public void write(byte[] b, int off, int len) {
          synchronized (screen) {
            screen.write(b, off, len);
            screen.notifyAll();
          }
        }
      };
    }

    @Override
    public OutputStream stderr() {
      return err;
    }
  }

  /** Binary stdin, captured stdout and stderr. */
  private static final class Bytes implements JobStdio {
    final InputStream in;
    final ByteArrayOutputStream out = new ByteArrayOutputStream();
    final ByteArrayOutputStream err = new ByteArrayOutputStream();

    Bytes(byte[] stdin) {
      this(new java.io.ByteArrayInputStream(stdin));
    }

    Bytes(InputStream stdin) {
      this.in = stdin;
    }

    @Override
    public InputStream stdin() {
      return in;
    }

    @Override
    public OutputStream stdout() {
      return out;
    }

    @Override
    public OutputStream stderr() {
      return err;
    }
  }
}
