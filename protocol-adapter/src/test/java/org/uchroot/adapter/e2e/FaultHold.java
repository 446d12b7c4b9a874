package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;

/**
 * A pause of a server's work at a named point (the engine's test-only hook, {@code
 * uchroot.test.hold}): the server's helpers stop there until the test releases them, so a test
 * signals or kills the server at that point instead of after a guessed delay.
 */
final class FaultHold {

  private static final Duration LIMIT = Duration.ofSeconds(60);

  private final String point;
  private final Path dir;

  private FaultHold(String point, Path dir) {
    this.point = point;
    this.dir = dir;
  }

  /** A hold at {@code point}, in a directory under {@code work} that {@code user} can use. */
  static FaultHold at(String point, Path work, String user) throws IOException {
    Path dir = Files.createDirectories(work.resolve("hold"));
    E2e.Result fifo =
        E2e.run(
            "mkfifo",
            null,
            work,
            Map.of(),
            LIMIT,
            List.of("mkfifo", "-m", "666", dir.resolve(point + ".release").toString()));
    assertEquals(0, fifo.exitCode, fifo.output);
    if (user != null) {
      E2e.chownTree(dir, user);
    }
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxrwxrwx"));
    return new FaultHold(point, dir);
  }

  /** The Java option that sets this hold in a server. */
  String javaOption() {
    return "-Duchroot.test.hold=" + point + ":" + dir;
  }

  boolean reached() {
    return Files.exists(dir.resolve(point + ".reached"));
  }

  /**
   * Whether a helper waits at the hold now; if so, forgets it, so that the next helper to get there
   * is seen too.
   */
  boolean takeReached() throws IOException {
    return Files.deleteIfExists(dir.resolve(point + ".reached"));
  }

  /**
   * Lets one waiting helper go on. The FIFO is opened for reading too, so that the write never
   * waits: a helper that died at the hold leaves no reader, and the test fails on the server's
   * answer instead of hanging.
   */
  void release() throws IOException {
    try (FileChannel channel =
        FileChannel.open(
            dir.resolve(point + ".release"), StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      channel.write(ByteBuffer.wrap(new byte[] {'\n'}));
    }
  }

  /** The live helpers that were told of this hold: the engine passes it in their environment. */
  List<String> helpers() {
    return SignalFixtures.processesWithEnvironment("UCHROOT_TEST_HOLD=" + point + ":" + dir);
  }

  void awaitNoHelper() {
    Await.until(
        "every helper to end",
        LIMIT,
        () -> helpers().isEmpty(),
        () -> "still running: " + helpers());
  }
}
