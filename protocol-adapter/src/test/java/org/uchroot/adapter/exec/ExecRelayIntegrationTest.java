package org.uchroot.adapter.exec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.actors.SessionSpec;
import org.uchroot.adapter.Fixtures;
import org.uchroot.engine.BusyboxRootfs;
import org.uchroot.engine.ChannelStreams;
import org.uchroot.engine.Engine;
import org.uchroot.engine.Frame;
import org.uchroot.engine.Session;

/** The exec socket spoken to frame by frame, on a real session. */
@Tag("integration")
class ExecRelayIntegrationTest {

  private static Engine engine;
  private static Session session;

  @TempDir Path dir;

  private ExecRelay relay;

  @BeforeAll
  static void openSession() throws Exception {
    engine = Engine.start(Fixtures.engineConfig());
    session = engine.open(SessionSpec.of(BusyboxRootfs.tarball())).toCompletableFuture().join();
  }

  @AfterAll
  static void closeSession() {
    engine.close();
  }

  @BeforeEach
  void startRelay() throws IOException {
    relay = ExecRelay.start(dir.resolve("run/s1.exec.sock"), session);
  }

  @AfterEach
  void stopRelay() throws IOException {
    relay.close();
    assertFalse(Files.exists(relay.socket(), LinkOption.NOFOLLOW_LINKS), "the socket is removed");
    // The runtime directory, made private, stays for the user's other servers.
    assertEquals(
        "rwx------",
        PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("run"))));
  }

  @Test
  void relaysStdinStdoutStderrAndStatus() throws Exception {
    try (Client c = connect()) {
      c.send(Frame.argv(List.of("sh", "-c", "cat; echo done >&2; exit 5")));
      c.send(new Frame(Frame.STDIN, "one\n".getBytes(StandardCharsets.UTF_8)));
      c.send(new Frame(Frame.STDIN, "two\n".getBytes(StandardCharsets.UTF_8)));
      c.send(new Frame(Frame.STDIN_END, new byte[0]));
      Transcript t = c.readToEnd();
      assertEquals("one\ntwo\n", t.out());
      assertEquals("done\n", t.err());
      assertEquals(Frame.exit(5), t.last());
    }
  }

  @Test
  void aSignalFrameInterruptsTheCommand() throws Exception {
    try (Client c = connect()) {
      c.send(Frame.argv(List.of("sleep", "600")));
      waitForJobs(1);
      c.send(Frame.signal(2));
      assertEquals(Frame.exit(130), c.readToEnd().last());
    }
  }

  @Test
  void aClientThatLeavesHasItsCommandInterrupted() throws Exception {
    try (Client c = connect()) {
      c.send(Frame.argv(List.of("sleep", "600")));
      waitForJobs(1);
    }
    waitForJobs(0);
  }

  @Test
  void theFirstFrameMustNameACommand() throws Exception {
    try (Client c = connect()) {
      c.send(new Frame(Frame.STDIN, "x".getBytes(StandardCharsets.UTF_8)));
      assertEquals(
          Frame.failure("protocol error: the first frame must name a command"),
          c.readToEnd().last());
    }
    try (Client c = connect()) {
      c.send(new Frame(Frame.ARGV, new byte[0]));
      assertEquals(Frame.FAILURE, c.readToEnd().last().type());
    }
  }

  @Test
  void framesBeyondTheLimitsAreRefusedWithAReason() throws Exception {
    try (Client c = connect()) {
      c.sendHeader(Frame.ARGV, (16 << 20) + 1);
      assertEquals(
          Frame.failure(
              "protocol error: frame 'a' of 16777217 bytes is longer than the limit of 16777216 bytes"),
          c.readToEnd().last());
    }
    try (Client c = connect()) {
      c.send(new Frame(Frame.ARGV, new byte[Frame.MAX_ARGUMENTS + 1]));
      assertEquals(
          Frame.failure("protocol error: the command has more than 1048576 arguments"),
          c.readToEnd().last());
    }
    try (Client c = connect()) {
      c.send(Frame.argv(List.of("sleep", "600")));
      waitForJobs(1);
      c.sendHeader(Frame.STDIN, (1 << 20) + 1);
      assertEquals(
          Frame.failure(
              "protocol error: frame 'i' of 1048577 bytes is longer than the limit of 1048576 bytes"),
          c.readToEnd().last());
    }
    waitForJobs(0);
  }

  /**
   * Hostile clients: connections of random frames (any type, declared lengths up to far beyond
   * every limit, payloads cut short), each answered or closed within a bound, never left hanging
   * and never leaving a command behind; the relay then still runs commands.
   */
  @Test
  void randomFramesEndWithinABoundAndLeaveNoCommand() throws Exception {
    Random random = new Random(7);
    byte[] types = {'a', 'i', 'c', 's', 'o', 'x', 'f', 0, (byte) 0xff};
    for (int i = 0; i < 200; i++) {
      try (Client c = connect()) {
        for (int f = random.nextInt(4); f >= 0; f--) {
          int declared =
              random.nextInt(4) == 0
                  ? Integer.MAX_VALUE - random.nextInt(1000)
                  : random.nextInt(300);
          byte[] payload = new byte[Math.min(declared, random.nextInt(300))];
          random.nextBytes(payload);
          try {
            c.sendHeader(types[random.nextInt(types.length)], declared);
            c.sendRaw(payload);
          } catch (IOException e) {
            break; // the relay closed first: an end too
          }
        }
        c.shutdownOutput();
        c.awaitEnd(Duration.ofSeconds(10), "connection " + i);
      }
    }
    waitForJobs(0);
    try (Client c = connect()) {
      c.send(Frame.argv(List.of("echo", "still")));
      assertEquals("still\n", c.readToEnd().out());
    }
  }

  @Test
  void runsManyCommandsAtOnce() throws Exception {
    List<CompletableFuture<Transcript>> runs = new ArrayList<>();
    for (int i = 0; i < 20; i++) {
      String word = "run" + i;
      runs.add(
          CompletableFuture.supplyAsync(
              () -> {
                try (Client c = connect()) {
                  c.send(Frame.argv(List.of("echo", word)));
                  return c.readToEnd();
                } catch (IOException e) {
                  throw new IllegalStateException(e);
                }
              }));
    }
    for (int i = 0; i < runs.size(); i++) {
      Transcript t = runs.get(i).get(60, TimeUnit.SECONDS);
      assertEquals("run" + i + "\n", t.out());
      assertEquals(Frame.exit(0), t.last());
    }
  }

  @Test
  void stopAcceptingRemovesTheSocket() throws Exception {
    Path socket = relay.socket();
    assertTrue(Files.exists(socket));
    relay.stopAccepting();
    assertFalse(Files.exists(socket));
    assertThrows(IOException.class, this::connect);
  }

  private void waitForJobs(int jobs) throws Exception {
    for (int i = 0; i < 300; i++) {
      if (session.status().toCompletableFuture().get().runningJobs() == jobs) {
        return;
      }
      Thread.sleep(100);
    }
    throw new AssertionError("never " + jobs + " running job(s)");
  }

  private Client connect() throws IOException {
    SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX);
    try {
      channel.connect(UnixDomainSocketAddress.of(relay.socket()));
    } catch (IOException e) {
      channel.close();
      throw e;
    }
    return new Client(channel);
  }

  private record Transcript(String out, String err, Frame last) {}

  /** A client written from the protocol's description, not from the server's code. */
  private static final class Client implements AutoCloseable {
    private final SocketChannel channel;
    private final OutputStream out;
    private final InputStream in;

    Client(SocketChannel channel) {
      this.channel = channel;
      this.out = ChannelStreams.output(channel);
      this.in = ChannelStreams.input(channel);
    }

    void send(Frame frame) throws IOException {
      frame.writeTo(out);
    }

    /** A frame's header alone, declaring {@code length} bytes. */
    void sendHeader(byte type, int length) throws IOException {
      out.write(ByteBuffer.allocate(5).put(type).putInt(length).array());
    }

    void sendRaw(byte[] bytes) throws IOException {
      out.write(bytes);
    }

    void shutdownOutput() {
      try {
        channel.shutdownOutput();
      } catch (IOException e) {
        // Closed by the relay already.
      }
    }

    /** Reads whatever comes until the relay closes the connection; fails if it does not. */
    void awaitEnd(Duration limit, String what) throws Exception {
      CompletableFuture<Void> end =
          CompletableFuture.runAsync(
              () -> {
                try {
                  while (in.read(new byte[4096]) >= 0) {
                    // Discarded: only the end matters.
                  }
                } catch (IOException e) {
                  // Reset by the relay: an end too.
                }
              });
      try {
        end.get(limit.toMillis(), TimeUnit.MILLISECONDS);
      } catch (java.util.concurrent.TimeoutException e) {
        channel.close();
        throw new AssertionError(what + " still open after " + limit);
      }
    }

    /** Reads up to the last frame, which must be followed by the end of the stream. */
    Transcript readToEnd() throws IOException {
      ByteArrayOutputStream stdout = new ByteArrayOutputStream();
      ByteArrayOutputStream stderr = new ByteArrayOutputStream();
      while (true) {
        Frame frame = Frame.read(in, 1 << 20);
        if (frame == null) {
          throw new AssertionError("no exit or failure frame");
        }
        switch (frame.type()) {
          case Frame.STDOUT -> stdout.writeBytes(frame.payload());
          case Frame.STDERR -> stderr.writeBytes(frame.payload());
          default -> {
            assertNull(Frame.read(in, 1 << 20), "nothing after " + frame);
            return new Transcript(
                stdout.toString(StandardCharsets.UTF_8),
                stderr.toString(StandardCharsets.UTF_8),
                frame);
          }
        }
      }
    }

    @Override
    public void close() throws IOException {
      channel.close();
    }
  }
}
