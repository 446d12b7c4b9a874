package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.uchroot.adapter.e2e.VirtServerProcess.exec;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.engine.LeakCheck;

/**
 * Twenty clients of one shared engine at once, as a batch of builds and tests runs them: a real
 * sbuild build, a real autopkgtest run and eighteen protocol clients, each opening a testbed,
 * running a command and closing it. All succeed, and nothing is left.
 */
@Tag("e2e")
class SharedEngineLoadE2ETest {

  private static final int PROTOCOL_CLIENTS = 18;
  private static final Duration LIMIT = Duration.ofMinutes(5);

  @RegisterExtension final LeakCheck leaks = SignalFixtures.leakCheck();

  @TempDir Path tempDir;

  @Test
  void twentyClientsAtOnceEachGetTheirTestbedAndLeaveNothing() throws Exception {
    E2e.requireRoot();
    E2e.requireCommands("sbuild", "autopkgtest", "perl", "mkfifo");
    Path runtimeDir = tempDir.resolve("run");
    Map<String, String> shared =
        Map.of("UCHROOT_ENGINE", "shared", "UCHROOT_RUNTIME_DIR", runtimeDir.toString());
    Path work = SignalFixtures.workDir(tempDir.resolve("clients"), null);
    Map<String, String> clientEnv =
        new LinkedHashMap<>(SignalFixtures.environment(work, null, leaks));
    clientEnv.putAll(shared);

    List<Callable<String>> clients = new ArrayList<>();
    clients.add(
        () -> {
          SbuildE2ETest.build(
              Files.createDirectories(tempDir.resolve("sbuild")), null, leaks, shared);
          return "sbuild built its package";
        });
    clients.add(
        () -> {
          AutopkgtestRunnerE2ETest.runAutopkgtest(
              Files.createDirectories(tempDir.resolve("autopkgtest")), null, leaks, shared);
          return "autopkgtest passed";
        });
    for (int i = 1; i <= PROTOCOL_CLIENTS; i++) {
      int n = i;
      clients.add(() -> protocolClient(work, clientEnv, n));
    }
    ExecutorService pool = Executors.newFixedThreadPool(clients.size());
    try {
      List<Future<String>> results = new ArrayList<>();
      for (Callable<String> client : clients) {
        results.add(pool.submit(client));
      }
      for (Future<String> result : results) {
        System.out.println("[e2e] shared engine under load: " + get(result));
      }
    } finally {
      pool.shutdownNow();
      E2e.Result stopped =
          E2e.run(
              "shared-load-stop",
              null,
              work,
              clientEnv,
              LIMIT,
              List.of(E2e.distributionDir().resolve("bin/uchroot").toString(), "engine", "stop"));
      assertEquals(0, stopped.exitCode, stopped.tail(20));
    }
  }

  private static String protocolClient(Path work, Map<String, String> env, int n)
      throws IOException {
    try (VirtServerProcess frontend =
        VirtServerProcess.start(
            "shared-load-" + n,
            null,
            work.resolve("client-" + n),
            env,
            List.of("-t", SignalFixtures.busyboxTarball().toString()))) {
      frontend.ok("open");
      VirtServerProcess.Job job =
          frontend.launch("echo", exec(frontend.execProgram(), "echo client " + n));
      job.awaitLine("client " + n, LIMIT);
      assertEquals("exit 0", job.awaitStatus(LIMIT), job.describe());
      frontend.ok("close");
      frontend.send("quit");
      assertEquals("exit 0", frontend.awaitServerExit(LIMIT), frontend.describe());
      return "protocol client " + n + " ran its command";
    }
  }

  private static String get(Future<String> result) throws Exception {
    try {
      return result.get();
    } catch (ExecutionException e) {
      if (e.getCause() instanceof Exception cause) {
        throw cause;
      }
      throw e;
    }
  }
}
