package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.engine.testing.LeakCheck;

/**
 * {@code uchroot cache prune} never removes the base of a live overlay testbed: the testbed goes on
 * running commands and reverting on it; once closed, the next prune removes it.
 */
@Tag("e2e")
class CachePruneE2ETest {

    private static final Duration LIMIT = Duration.ofSeconds(60);

    @RegisterExtension
    final LeakCheck leaks = SignalFixtures.leakCheck();

    @TempDir
    Path tempDir;

    @Test
    void pruneKeepsTheBaseOfALiveTestbedAsRoot() throws IOException {
        pruneKeepsTheBaseOfALiveTestbed(null);
    }

    @Test
    void pruneKeepsTheBaseOfALiveTestbedAsUnprivilegedUser() throws IOException {
        pruneKeepsTheBaseOfALiveTestbed(E2e.testUser());
    }

    private void pruneKeepsTheBaseOfALiveTestbed(String user) throws IOException {
        E2e.requireRoot();
        Path work = SignalFixtures.workDir(tempDir, user);
        Map<String, String> env = environment(work, user);
        Path base;
        try (VirtServerProcess server = VirtServerProcess.start("prune", user, work.resolve("group"), env,
                List.of("--rootfs-mode", "overlay", "-t", SignalFixtures.busyboxTarball().toString()))) {
            server.ok("open");
            List<Path> bases = bases(work);
            assertEquals(1, bases.size(), bases.toString());
            base = bases.get(0);

            E2e.Result prune = prune(work, user, env);
            assertFalse(prune.output.contains(base.toString()), prune.output);
            assertTrue(Files.isDirectory(base), "the live testbed's base was pruned");

            List<String> exec = server.execProgram();
            assertEquals("alive\n", server.run("after-prune", exec, "echo alive", LIMIT).stdout());
            server.ok("revert");
            assertEquals("alive\n", server.run("after-revert", exec, "echo alive", LIMIT).stdout());
            server.ok("close");
        }
        E2e.Result prune = prune(work, user, env);
        assertTrue(prune.output.contains("removed " + base), prune.output);
        assertEquals(List.of(), bases(work));
    }

    private static E2e.Result prune(Path work, String user, Map<String, String> env) throws IOException {
        E2e.Result prune = E2e.run("cache-prune-" + SignalFixtures.who(user), user, work, env, LIMIT,
                List.of(E2e.distributionDir().resolve("bin/uchroot").toString(), "cache", "prune"));
        assertEquals(0, prune.exitCode, prune.output);
        return prune;
    }

    private Map<String, String> environment(Path work, String user) {
        Map<String, String> env = SignalFixtures.environment(work, user, leaks);
        env.put("UCHROOT_JAVA_OPTS",
                env.get("UCHROOT_JAVA_OPTS") + " -Duchroot.cache-dir=" + work.resolve("cache"));
        return env;
    }

    /** The cache's bases: its directories, lock and metadata files aside. */
    private static List<Path> bases(Path work) throws IOException {
        try (Stream<Path> files = Files.list(work.resolve("cache"))) {
            return files.filter(Files::isDirectory).toList();
        }
    }
}
