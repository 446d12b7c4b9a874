package org.uchroot.adapter.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the command lines answer to bad input, before any testbed: {@code uchroot}'s commands exit 2
 * for a command line that does not parse and 125 for bad input, with one line that says why; the
 * drop-in server keeps the reference's statuses and argparse's usage text.
 */
class MainTest {

  @TempDir Path dir;

  @Test
  void anUnknownOptionIsAUsageErrorThatSaysWhereToReadMore() {
    Outcome outcome = run("run", "--bogus", "true");
    assertEquals(2, outcome.status());
    assertEquals(
        "uchroot run: Unknown option: '--bogus'\n"
            + "Try 'uchroot run --help' for more information.\n",
        outcome.stderr());
  }

  @Test
  void aMissingArgumentIsAUsageError() {
    Outcome outcome = run("cache", "prune", "--tarball");
    assertEquals(2, outcome.status(), outcome.stderr());
    assertEquals(
        "Try 'uchroot cache prune --help' for more information.",
        outcome.stderr().lines().reduce((a, b) -> b).orElse(""));
  }

  @Test
  void badInputToAUchrootCommandExits125WithItsReason() throws Exception {
    Path tarball = Files.createFile(dir.resolve("rootfs.tar"));
    Outcome bind = run("run", "-t", tarball.toString(), "-b", dir + "/missing", "/mnt", "true");
    assertEquals(125, bind.status(), bind.stderr());
    assertEquals(1, bind.stderr().lines().count(), bind.stderr());
    assertEquals(true, bind.stderr().endsWith(dir + "/missing doesn't exist\n"), bind.stderr());
  }

  @Test
  void theDropInServerKeepsTheReferenceStatuses() {
    Outcome unknown = run("virt-server", "--bogus");
    assertEquals(2, unknown.status());
    assertEquals(
        "uchroot virt-server: error: Unknown option: '--bogus'",
        unknown.stderr().lines().reduce((a, b) -> b).orElse(""));
  }

  @Test
  void everyCommandHasHelpAndTheProgramAVersion() {
    for (String[] args :
        new String[][] {
          {"--help"},
          {"help"},
          {"help", "run"},
          {"run", "--help"},
          {"sessions", "--help"},
          {"sessions", "cleanup", "--help"},
          {"cache", "--help"},
          {"cache", "prune", "--help"},
          {"batch", "--help"},
          {"virt-server", "--help"},
          {"doctor", "--help"},
          {"--version"}
        }) {
      assertEquals(0, run(args).status(), String.join(" ", args));
    }
    StringWriter out = new StringWriter();
    assertEquals(0, Main.run(new PrintWriter(out, true), new PrintWriter(out, true), "--version"));
    assertEquals(true, out.toString().matches("uchroot \\d+\\.\\d+\\.\\d+.*\n"), out.toString());
    for (String dropIn : new String[] {"-V", "--version"}) {
      StringWriter server = new StringWriter();
      assertEquals(
          0,
          Main.run(
              new PrintWriter(server, true), new PrintWriter(server, true), "virt-server", dropIn));
      assertEquals(out.toString(), server.toString(), "virt-server " + dropIn);
    }
  }

  private record Outcome(int status, String stderr) {}

  private static Outcome run(String... args) {
    StringWriter err = new StringWriter();
    int status = Main.run(new PrintWriter(new StringWriter()), new PrintWriter(err, true), args);
    return new Outcome(status, err.toString());
  }
}
