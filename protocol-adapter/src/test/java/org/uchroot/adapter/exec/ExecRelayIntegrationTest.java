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
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
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
import org.uchroot.engine.Engine;
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
        "rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir.resolve("run"))));
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
