package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

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
import java.util.Optional;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.engine.testing.LeakCheck;

/**
 * No helper of the server (the unpack's shell and tar) outlives it, however it ends during an
 * open; SIGTERM aborts an open at once and leaves nothing. The open is held in the middle of its
 * unpack by the engine's test-only hook ({@code uchroot.test.hold}), so the signals come while the
 * helpers run, not after a guessed delay.
 */
@Tag("e2e")
class HelperLifetimeE2ETest {

    private static final Duration LIMIT = Duration.ofSeconds(60);

    @RegisterExtension
    final LeakCheck leaks = SignalFixtures.leakCheck();

    @TempDir
    Path tempDir;

    @Test
    void aServerKilledDuringAnOpenLeavesNoHelperAsRoot() throws IOException {
        killedDuringAnOpen(null);
    }

    @Test
    void aServerKilledDuringAnOpenLeavesNoHelperAsUnprivilegedUser() throws IOException {
        killedDuringAnOpen(E2e.testUser());
    }

    @Test
    void sigtermAbortsAnOpenAndLeavesNothingAsRoot() throws IOException {
        terminatedDuringAnOpen(null);
    }

    @Test
    void sigtermAbortsAnOpenAndLeavesNothingAsUnprivilegedUser() throws IOException {
        terminatedDuringAnOpen(E2e.testUser());
    }

    @Test
    void aCtrlCWhileHelpersAreSpawnedLeavesThemAliveAsRoot() throws IOException {
        ctrlCDuringSpawns(null);
    }

    @Test
    void aCtrlCWhileHelpersAreSpawnedLeavesThemAliveAsUnprivilegedUser() throws IOException {
        ctrlCDuringSpawns(E2e.testUser());
    }

    /**
     * Each helper of an open is held where a spawned process is still in the server's process
     * group, and the group gets a Ctrl+C there: every helper lives on, and the open succeeds.
     */
    private void ctrlCDuringSpawns(String user) throws IOException {
        E2e.requireRoot();
        Path work = work(user);
        Path hold = hold(work, user, "spawn");
        try (VirtServerProcess server = VirtServerProcess.start("ctrl-c-spawn", user,
                work.resolve("group-ctrl-c-spawn"), environment(work, user, "spawn", hold),
                List.of("--rootfs-mode", "overlay", "-t", SignalFixtures.busyboxTarball().toString()))) {
            server.send("open");
            int held = 0;
            Optional<String> answer = Optional.empty();
            long deadline = System.nanoTime() + LIMIT.toNanos();
            while (answer.isEmpty() && System.nanoTime() < deadline) {
                Path reached = hold.resolve("spawn.reached");
                if (Files.exists(reached)) {
                    Files.delete(reached);
                    server.signalGroup(2);
                    held++;
                    release(hold.resolve("spawn.release"));
                }
                answer = server.pollAnswer(Duration.ofMillis(20));
            }
            assertTrue(answer.isPresent() && answer.get().startsWith("ok"),
                    "open answered " + answer + " after " + held + " held spawn(s)\n" + server.describe());
            assertTrue(held >= 2, "the open's helpers were not held: " + held);
            VirtServerProcess.Job job = server.run("after", server.execProgram(), "echo alive", LIMIT);
            assertEquals("alive\n", job.stdout(), job.describe());
            server.ok("close");
        }
    }

    /**
     * A line into the hold's FIFO, opened for reading too so that the write never waits: a helper
     * that died at the hold (the Ctrl+C killed it) leaves no reader, and the test fails on the
     * open's answer instead of hanging.
     */
    private static void release(Path fifo) throws IOException {
        try (FileChannel channel = FileChannel.open(fifo, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
            channel.write(ByteBuffer.wrap(new byte[] {'\n'}));
        }
    }

    private void killedDuringAnOpen(String user) throws IOException {
        E2e.requireRoot();
        Path work = work(user);
        signalDuringAHeldUnpack("killed", user, work, 9);
        List<Path> left = partialBases(work);
        assertEquals(1, left.size(), "the killed unpack left no partial base: " + left);
        // sessions cleanup removes it, as the next open of the tarball would.
        E2e.Result cleanup = E2e.run("sessions-cleanup-" + SignalFixtures.who(user), user, work,
                environment(work, user, null, null), LIMIT,
                List.of(E2e.distributionDir().resolve("bin/uchroot").toString(), "sessions", "cleanup",
                        "--orphaned"));
        assertEquals(0, cleanup.exitCode, cleanup.output);
        assertTrue(cleanup.output.contains("removed " + left.get(0)), cleanup.output);
        assertEquals(List.of(), partialBases(work));
        try (VirtServerProcess server = start("after-kill", user, work, null)) {
            server.ok("open");
            server.ok("close");
        }
    }

    private void terminatedDuringAnOpen(String user) throws IOException {
        E2e.requireRoot();
        Path work = work(user);
        assertEquals("signal 15", signalDuringAHeldUnpack("terminated", user, work, 15));
        assertEquals(List.of(), partialBases(work), "the aborted unpack left its partial base");
        try (Stream<Path> left = Files.list(work.resolve("tmp"))) {
            assertEquals(List.of(), left.toList(), "the aborted open left its testbed");
        }
    }

    /**
     * Sends {@code signal} to a server whose open is held in its unpack; waits until the server
     * and every helper of the unpack are gone. Returns how the server ended.
     */
    private String signalDuringAHeldUnpack(String name, String user, Path work, int signal)
            throws IOException {
        Path hold = hold(work, user, "unpack");
        try (VirtServerProcess server = start(name, user, work, hold)) {
            server.send("open");
            awaitHeld(hold, server);
            server.signalServer(signal);
            String status = server.awaitServerExit(LIMIT);
            awaitNoHelper(hold);
            return status;
        }
    }

    private Path work(String user) throws IOException {
        Path work = SignalFixtures.workDir(tempDir, user);
        // The testbed's root of a root session, an unprivileged id, must reach the hold's FIFO.
        for (Path dir : List.of(tempDir, work)) {
            Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwx--x--x"));
        }
        return work;
    }

    /** The directory of a hold at {@code point}, with the FIFO that releases it. */
    private static Path hold(Path work, String user, String point) throws IOException {
        Path hold = Files.createDirectories(work.resolve("hold"));
        E2e.Result fifo = E2e.run("mkfifo", null, work, Map.of(), LIMIT,
                List.of("mkfifo", "-m", "666", hold.resolve(point + ".release").toString()));
        assertEquals(0, fifo.exitCode, fifo.output);
        if (user != null) {
            E2e.chownTree(hold, user);
        }
        Files.setPosixFilePermissions(hold, PosixFilePermissions.fromString("rwxrwxrwx"));
        return hold;
    }

    private VirtServerProcess start(String name, String user, Path work, Path hold) throws IOException {
        return VirtServerProcess.start(name, user, work.resolve("group-" + name),
                environment(work, user, "unpack", hold),
                List.of("--rootfs-mode", "overlay", "-t", SignalFixtures.busyboxTarball().toString()));
    }

    /** The test's own state and cache directories, the hold if any, and the leak check's tag. */
    private Map<String, String> environment(Path work, String user, String point, Path hold) {
        Map<String, String> env = SignalFixtures.environment(work, user, leaks);
        String options = env.get("UCHROOT_JAVA_OPTS") + " -Duchroot.cache-dir=" + work.resolve("cache");
        if (hold != null) {
            options += " -Duchroot.test.hold=" + point + ":" + hold;
        }
        env.put("UCHROOT_JAVA_OPTS", options);
        return env;
    }

    private static void awaitHeld(Path hold, VirtServerProcess server) {
        Await.until("the unpack to reach its hold", LIMIT,
                () -> Files.exists(hold.resolve("unpack.reached")), server::describe);
        assertFalse(helpers(hold).isEmpty(), "no helper holds the unpack");
    }

    private static void awaitNoHelper(Path hold) {
        Await.until("every helper to end", LIMIT, () -> helpers(hold).isEmpty(),
                () -> "still running: " + helpers(hold));
    }

    /** The processes of the held unpack: their command line names the hold's directory. */
    private static List<String> helpers(Path hold) {
        // The server names it too, in the option that sets the hold.
        return SignalFixtures.processesWith(hold.toString()).stream()
                .filter(line -> !line.contains("uchroot.test.hold="))
                .toList();
    }

    private static List<Path> partialBases(Path work) throws IOException {
        Path cache = work.resolve("cache");
        if (!Files.isDirectory(cache)) {
            return List.of();
        }
        try (Stream<Path> files = Files.list(cache)) {
            return files.filter(p -> p.getFileName().toString().contains(".partial-")).toList();
        }
    }
}
