package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The same scripted protocol sessions, given to autopkgtest-virt-unshare and to
 * autopkgtest-virt-uchroot on the same tarball, get the same answers and exit statuses. Paths that
 * are random by design (scratch directory, exec program) and the capabilities that differ on
 * purpose (docs/protocol.md) are normalised before comparing.
 */
@Tag("e2e")
class ReferenceComparisonE2ETest {

  private static Path tarball;
  private static Path hostDir;

  /** Capabilities that differ on purpose: our user name and our protocol extensions. */
  private static final Set<String> OWN_CAPABILITIES = Set.of("uchroot-status", "uchroot-interrupt");

  @BeforeAll
  static void fixtures() throws Exception {
    tarball = E2e.debianTarball();
    hostDir = Files.createTempDirectory("uchroot-compare.");
    Files.writeString(hostDir.resolve("file.txt"), "payload\n");
    Path script = Files.writeString(hostDir.resolve("run.sh"), "#!/bin/sh\necho hi\n");
    script.toFile().setExecutable(true);
    Files.createDirectories(hostDir.resolve("tree/sub"));
    Files.writeString(hostDir.resolve("tree/sub/leaf"), "leaf\n");
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    new ProcessBuilder("rm", "-rf", "--one-file-system", hostDir.toString())
                        .start()
                        .waitFor();
                  } catch (IOException | InterruptedException e) {
                    // A temporary directory of the test.
                  }
                }));
  }

  static Stream<Arguments> sessions() {
    String h = "HOST";
    return Stream.of(
        Arguments.of(
            "lifecycle",
            List.of("capabilities", "open", "capabilities", "revert", "close", "quit")),
        Arguments.of(
            "copies",
            List.of(
                "open",
                "copydown " + h + "/file.txt DOWNTMP/file.txt",
                "copydown " + h + "/run.sh DOWNTMP/run.sh",
                "copydown " + h + "/tree/ DOWNTMP/tree/",
                "copyup DOWNTMP/file.txt " + h + "/back.txt",
                "copyup DOWNTMP/tree/ " + h + "/back-tree/",
                "close",
                "quit")),
        Arguments.of("close when not open", List.of("close")),
        Arguments.of("open twice", List.of("open", "open")),
        Arguments.of("unknown command", List.of("capabilities", "frobnicate")),
        Arguments.of("too many arguments", List.of("capabilities extra")),
        Arguments.of("too few arguments", List.of("open", "copydown onlyone")),
        Arguments.of("directoryness", List.of("open", "copydown " + h + "/tree/ DOWNTMP/x")),
        Arguments.of("revert when closed", List.of("revert")),
        Arguments.of("print-execute-command when closed", List.of("print-execute-command")),
        Arguments.of("reboot not advertised", List.of("open", "reboot")),
        Arguments.of("quit when closed", List.of("quit")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("sessions")
  void sameAnswersAsTheReference(String name, List<String> script) throws Exception {
    Transcript reference = converse("autopkgtest-virt-unshare", script);
    Transcript ours =
        converse(E2e.distributionDir().resolve("bin/autopkgtest-virt-uchroot").toString(), script);
    assertEquals(reference, ours, name);
  }

  /** What a client observes: answers, the failure line on stderr, and the exit status. */
  record Transcript(List<String> answers, List<String> failures, int status) {}

  private static final java.util.concurrent.atomic.AtomicInteger UNPACK_DIRS =
      new java.util.concurrent.atomic.AtomicInteger();

  private static Transcript converse(String server, List<String> script) throws Exception {
    // An unpack directory inside the test's own: the reference makes its directory at start and
    // leaves it behind when the testbed was never opened.
    Path unpack = hostDir.resolve("unpack-" + UNPACK_DIRS.incrementAndGet());
    ProcessBuilder builder =
        new ProcessBuilder(server, "-t", tarball.toString(), "-u", unpack.toString())
            .redirectErrorStream(false);
    E2e.throughEngine(builder.environment(), hostDir.resolve("run"));
    Process p = builder.start();
    var out =
        new java.io.BufferedReader(
            new java.io.InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8));
    var in = p.getOutputStream();
    var err =
        java.util.concurrent.CompletableFuture.supplyAsync(
            () -> {
              try {
                return new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
              } catch (IOException e) {
                return "";
              }
            });
    List<String> answers = new ArrayList<>();
    answers.add(out.readLine());
    String downtmp = "DOWNTMP";
    for (String line : script) {
      String sent = line.replace("HOST", hostDir.toString()).replace("DOWNTMP", downtmp);
      in.write((sent + "\n").getBytes(StandardCharsets.UTF_8));
      in.flush();
      if (line.equals("quit")) {
        break;
      }
      String answer = out.readLine();
      if (answer == null) {
        break;
      }
      if (line.equals("open") && answer.startsWith("ok ")) {
        downtmp = answer.substring(3);
      }
      answers.add(normalise(answer, downtmp));
    }
    in.close();
    if (!p.waitFor(5, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new AssertionError(server + " did not exit after " + script);
    }
    List<String> failures =
        err.get().lines().filter(l -> l.contains("<VirtSubproc>: failure:")).toList();
    return new Transcript(answers, failures, p.exitValue());
  }

  private static String normalise(String answer, String downtmp) {
    String text = answer.replace(downtmp, "DOWNTMP");
    if (!text.startsWith("ok ")) {
      return text;
    }
    String[] words = text.substring(3).split(" ");
    if (words.length == 1 && words[0].contains(",")) {
      return "ok EXEC-PROGRAM";
    }
    Set<String> kept = new TreeSet<>();
    for (String word : words) {
      // The reference repeats "ok" in every later capabilities answer: its bug, not ours
      // (docs/protocol.md).
      if (OWN_CAPABILITIES.contains(word) || word.equals("ok")) {
        continue;
      }
      kept.add(
          word.startsWith("suggested-normal-user=")
              ? "suggested-normal-user=USER"
              : word.startsWith("downtmp-host=") ? "downtmp-host=PATH" : word);
    }
    return "ok " + String.join(" ", kept);
  }
}
