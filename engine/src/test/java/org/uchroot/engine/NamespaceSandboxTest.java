package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The engine's end of a job server's removal, with {@code sh} standing in for the job server: it
 * reads what the job server prints, and keeps its hands off a socket path the job server cleared.
 */
class NamespaceSandboxTest {

  @Test
  void aReportedRemovalLeavesTheSocketPathToTheNextJobServer(@TempDir Path tmp) throws Exception {
    NamespaceSandbox sandbox = standIn(tmp, "read r; echo uchroot-testbed-removed; sleep 0.2");
    // The job server unlinked its socket; this path is its successor's after a revert.
    Path successors = Files.createFile(sandbox.jobSocket());
    sandbox.end();
    assertTrue(sandbox.awaitRemoval());
    sandbox.awaitEnd();
    assertTrue(Files.exists(successors));
  }

  @Test
  void anEndWithoutTheReportLeavesTheTestbedAndRemovesTheSocket(@TempDir Path tmp)
      throws Exception {
    NamespaceSandbox sandbox = standIn(tmp, "read r; echo something else");
    Files.createFile(sandbox.jobSocket());
    sandbox.end();
    assertFalse(sandbox.awaitRemoval());
    sandbox.awaitEnd();
    assertFalse(Files.exists(sandbox.jobSocket()));
  }

  @Test
  void aJobServerThatDiesSilentlyLeavesTheTestbed(@TempDir Path tmp) throws Exception {
    NamespaceSandbox sandbox = standIn(tmp, "exit 1");
    sandbox.end();
    assertFalse(sandbox.awaitRemoval());
    sandbox.awaitEnd();
    assertFalse(sandbox.isAlive());
  }

  private static NamespaceSandbox standIn(Path tmp, String script) throws Exception {
    Process holder = new ProcessBuilder("sh", "-c", script).start();
    return new NamespaceSandbox(
        holder,
        holder.toHandle(),
        tmp.resolve("root"),
        tmp.resolve("scratch"),
        tmp.resolve("jobd.sock"),
        true);
  }
}
