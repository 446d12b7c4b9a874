package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The job server's end, driven directly rather than through an engine, whose own remover would
 * otherwise delete whatever the job server left: asked to, it takes the testbed's mounts down and
 * deletes the testbed, and nothing outside it; not asked, it leaves the testbed to the engine.
 */
@Tag("integration")
class JobServerRemovalIntegrationTest {

  @ParameterizedTest(name = "overlay: {0}")
  @ValueSource(booleans = {false, true})
  void askedToTheJobServerDeletesTheTestbedAndNothingOutsideIt(boolean overlay, @TempDir Path temp)
      throws Exception {
    Path shared = Files.createDirectories(temp.resolve("host/shared"));
    for (int i = 0; i < 20; i++) {
      Files.writeString(shared.resolve("sentinel-" + i), "keep " + i);
    }
    Files.createDirectories(shared.resolve("sub/deeper"));
    Files.writeString(shared.resolve("sub/deeper/sentinel"), "keep deep");
    Map<String, String> hostBefore = contents(temp.resolve("host"));
    Testbed testbed = testbed(temp, overlay);
    // Symlinks out of the testbed, to the bound directory's host path and to /, are deleted,
    // never followed; the bound directory itself is unmounted before anything is deleted.
    Files.createSymbolicLink(testbed.files().resolve("link-to-host"), shared);
    Files.createSymbolicLink(testbed.files().resolve("link-to-root"), Path.of("/"));
    Map<String, String> baseBefore = overlay ? contents(temp.resolve("base")) : Map.of();

    JobServer server = JobServer.start(temp, testbed, shared, "/srv/shared");
    server.run("mkdir -p /var/made/inside && touch /var/made/inside/file /srv/shared/seen");
    assertEquals(0, server.end(true));

    assertFalse(Files.exists(testbed.top()), testbed.top() + " is left");
    Map<String, String> hostAfter = contents(temp.resolve("host"));
    assertEquals("", hostAfter.remove("shared/seen"), "the bind mount did not reach the host");
    assertEquals(hostBefore, hostAfter);
    if (overlay) {
      assertEquals(baseBefore, contents(temp.resolve("base")), "the overlay's base changed");
    }
    assertEquals(List.of(), MountTable.mountsAtOrBelow(temp));
  }

  @ParameterizedTest(name = "overlay: {0}")
  @ValueSource(booleans = {false, true})
  void notAskedTheJobServerLeavesTheTestbed(boolean overlay, @TempDir Path temp) throws Exception {
    Path shared = Files.createDirectories(temp.resolve("host/shared"));
    Testbed testbed = testbed(temp, overlay);
    JobServer server = JobServer.start(temp, testbed, shared, "/srv/shared");
    server.run("touch /made-inside");
    assertEquals(0, server.end(false));

    assertTrue(Files.isDirectory(testbed.top()));
    assertTrue(
        Files.exists(testbed.files().resolve("made-inside")), "the testbed's files are gone");
    assertEquals(List.of(), MountTable.mountsAtOrBelow(temp));
    new SafeRemover(new IdMapping.Host(), EngineConfig.load().libexecDir())
        .removeNow(testbed.top());
  }

  /** A testbed: its directory, where files put there from the host land, how jobd mounts it. */
  private record Testbed(Path top, Path files, List<String> overlayArgs) {}

  private static Testbed testbed(Path temp, boolean overlay) throws Exception {
    Path top = Files.createDirectory(temp.resolve("testbed"));
    if (!overlay) {
      untar(top);
      return new Testbed(top, top, List.of());
    }
    Path base = Files.createDirectory(temp.resolve("base"));
    untar(base);
    for (String dir : List.of("upper", "work", "root")) {
      Files.createDirectory(top.resolve(dir));
    }
    // Files made from the host go in the upper directory: the mount point is empty until then.
    Path upper = top.resolve("upper");
    return new Testbed(
        top,
        upper,
        List.of(
            "--overlay",
            base.toString(),
            upper.toString(),
            top.resolve("work").toString(),
            Host.isRoot() ? new IdMapping.Host().overlayOptions() : "userxattr"));
  }

  private static void untar(Path into) throws Exception {
    Process tar =
        new ProcessBuilder("tar", "-xf", BusyboxRootfs.tarball().toString(), "-C", into.toString())
            .inheritIO()
            .start();
    assertEquals(0, tar.waitFor());
  }

  /** Every path under dir, with the content of each regular file ("" for the rest). */
  private static Map<String, String> contents(Path dir) throws IOException {
    Map<String, String> found = new TreeMap<>();
    try (Stream<Path> paths = Files.walk(dir)) {
      for (Path path : paths.toList()) {
        found.put(
            dir.relativize(path).toString(),
            Files.isRegularFile(path, LinkOption.NOFOLLOW_LINKS)
                ? new String(Files.readAllBytes(path), StandardCharsets.ISO_8859_1)
                : "");
      }
    }
    return found;
  }

  /** A job server in namespaces of its own, as the provisioner starts one. */
  private static final class JobServer {
    private final Process holder;
    private final Path socket;

    private JobServer(Process holder, Path socket) {
      this.holder = holder;
      this.socket = socket;
    }

    static JobServer start(Path temp, Testbed testbed, Path outside, String inside)
        throws Exception {
      Path run =
          Files.createDirectory(
              temp.resolve("run"),
              PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rwx------")));
      Path socket = run.resolve("jobd.sock");
      Path root = testbed.overlayArgs().isEmpty() ? testbed.top() : testbed.top().resolve("root");
      List<String> argv = new ArrayList<>(List.of("unshare"));
      if (!Host.isRoot()) {
        argv.add("--map-root-user");
      }
      argv.addAll(
          List.of(
              "--mount",
              "--propagation",
              "private",
              "--pid",
              "--fork",
              "--kill-child",
              "--",
              EngineConfig.load().libexecDir().resolve("uchroot-jobd").toString(),
              "--root",
              root.toString(),
              "--socket",
              socket.toString(),
              "--testbed",
              testbed.top().toString()));
      argv.addAll(testbed.overlayArgs());
      argv.addAll(List.of("--bind", outside.toString(), inside));
      Process holder =
          new ProcessBuilder(argv).redirectError(ProcessBuilder.Redirect.INHERIT).start();
      String ready =
          new BufferedReader(new InputStreamReader(holder.getInputStream(), StandardCharsets.UTF_8))
              .readLine();
      assertEquals("uchroot-sandbox-ready", ready);
      return new JobServer(holder, socket);
    }

    /** Runs a shell command in the testbed through the job server's socket, as a job. */
    void run(String script) throws Exception {
      try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {
        channel.connect(UnixDomainSocketAddress.of(socket));
        JobServerIntegrationCases.send(
            channel, 'a', JobServerIntegrationCases.argv("/bin/sh", "-c", script));
        JobServerIntegrationCases.send(channel, 'c', new byte[0]);
        InputStream in = Channels.newInputStream(channel);
        for (; ; ) {
          byte[] head = in.readNBytes(5);
          assertEquals(5, head.length, "the job server closed the connection early");
          byte[] payload = in.readNBytes(ByteBuffer.wrap(head, 1, 4).getInt());
          if (head[0] == 'x') {
            assertEquals(0, payload[0], "the job failed");
            return;
          }
          System.err.write(payload);
        }
      }
    }

    /**
     * Ends the job server, asking it to remove the testbed or not; its exit status. It says that it
     * removed the testbed exactly when it exits with 0 after being asked.
     */
    int end(boolean remove) throws Exception {
      try (OutputStream stdin = holder.getOutputStream()) {
        if (remove) {
          stdin.write('r');
        }
      }
      String printed = new String(holder.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertTrue(holder.waitFor(30, TimeUnit.SECONDS), "the job server did not end");
      boolean removed = remove && holder.exitValue() == 0;
      assertEquals(removed ? "uchroot-testbed-removed\n" : "", printed);
      return holder.exitValue();
    }
  }
}
