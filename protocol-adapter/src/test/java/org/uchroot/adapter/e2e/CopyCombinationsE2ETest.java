package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code copydown} and {@code copyup} for every combination of a host path inside or outside {@code
 * downtmp-host} and a testbed path inside or outside the scratch directory, files and directories,
 * the same file at both ends included: what autopkgtest does with its test dependencies ({@code
 * copydown DOWNTMP_HOST/1-autopkgtest-satdep.deb DOWNTMP/1-autopkgtest-satdep.deb}). The same cases
 * run against autopkgtest-virt-unshare as root, so the expectations are the reference's own;
 * uchroot runs them as root and as an unprivileged user, in both rootfs modes.
 *
 * <p>In the scripts, {@code @H@} is a host directory of the server's user, {@code @S@} the {@code
 * downtmp-host}, {@code @T@} the scratch directory in the testbed and {@code @O@} a testbed
 * directory outside it.
 */
@Tag("e2e")
class CopyCombinationsE2ETest {

  private static final Duration LIMIT = Duration.ofMinutes(5);

  /**
   * One copy: what the host and the testbed hold before it, the request, and what both must hold
   * after it (scripts that fail with a message otherwise).
   */
  record Case(
      String name,
      String host,
      String testbed,
      String request,
      String hostAfter,
      String testbedAfter) {}

  static final List<Case> CASES =
      List.of(
          new Case(
              "down file, host outside, testbed inside",
              "printf one > @H@/d1",
              "",
              "copydown @H@/d1 @T@/d1",
              "test \"$(cat @H@/d1)\" = one",
              "test \"$(cat @T@/d1)\" = one"),
          new Case(
              "down file, host outside, testbed outside",
              "printf two > @H@/d2",
              "",
              "copydown @H@/d2 @O@/d2",
              "",
              "test \"$(cat @O@/d2)\" = two"),
          new Case(
              "down file, host inside, testbed inside under another name",
              "printf three > @S@/d3",
              "",
              "copydown @S@/d3 @T@/d3b",
              "test \"$(cat @S@/d3)\" = three",
              "test \"$(cat @T@/d3b)\" = three"),
          new Case(
              "down file, host inside, testbed outside",
              "printf four > @S@/d4",
              "",
              "copydown @S@/d4 @O@/d4",
              "test \"$(cat @S@/d4)\" = four",
              "test \"$(cat @O@/d4)\" = four"),
          new Case(
              "down file, the same file at both ends",
              "printf five > @S@/d5",
              "",
              "copydown @S@/d5 @T@/d5",
              "test \"$(cat @S@/d5)\" = five",
              "test \"$(cat @T@/d5)\" = five"),
          new Case(
              "down file, the same file through a host name with ..",
              "printf six > @S@/d6",
              "",
              "copydown @S@/sub/../d6 @T@/d6",
              "test \"$(cat @S@/d6)\" = six",
              "test \"$(cat @T@/d6)\" = six"),
          new Case(
              "down file replaces a directory",
              "printf seven > @H@/d7",
              "mkdir -p @O@/d7/x",
              "copydown @H@/d7 @O@/d7",
              "",
              "test -f @O@/d7 && test \"$(cat @O@/d7)\" = seven"),
          new Case(
              "down file keeps the source's mode less the umask",
              "printf '#!/bin/sh\\n' > @H@/d8; chmod 700 @H@/d8",
              "",
              "copydown @H@/d8 @O@/d8",
              "",
              "test \"$(stat -c %a @O@/d8)\" = 700"),
          new Case(
              "down directory, host outside, testbed inside",
              "mkdir -p @H@/t1/sub; printf a > @H@/t1/sub/f",
              "",
              "copydown @H@/t1/ @T@/t1/",
              "",
              "test \"$(cat @T@/t1/sub/f)\" = a"),
          new Case(
              "down directory, host outside, testbed outside, replacing",
              "mkdir -p @H@/t2/sub; printf b > @H@/t2/sub/f",
              "mkdir -p @O@/t2/old",
              "copydown @H@/t2/ @O@/t2/",
              "",
              "test \"$(cat @O@/t2/sub/f)\" = b && ! test -e @O@/t2/old"),
          new Case(
              "down directory, host inside, testbed outside",
              "mkdir -p @S@/t3/sub; printf c > @S@/t3/sub/f",
              "",
              "copydown @S@/t3/ @O@/t3/",
              "test \"$(cat @S@/t3/sub/f)\" = c",
              "test \"$(cat @O@/t3/sub/f)\" = c"),
          new Case(
              "down directory, the same directory at both ends",
              "mkdir -p @S@/t4; printf d > @S@/t4/f",
              "",
              "copydown @S@/t4/ @T@/t4/",
              "test \"$(cat @S@/t4/f)\" = d",
              "test \"$(cat @T@/t4/f)\" = d"),
          new Case(
              "up file, testbed inside, host outside",
              "",
              "printf u1 > @T@/u1",
              "copyup @T@/u1 @H@/u1",
              "test \"$(cat @H@/u1)\" = u1",
              "test \"$(cat @T@/u1)\" = u1"),
          new Case(
              "up file, testbed outside, host outside",
              "",
              "printf u2 > @O@/u2",
              "copyup @O@/u2 @H@/u2",
              "test \"$(cat @H@/u2)\" = u2",
              ""),
          new Case(
              "up file, testbed inside, host inside under another name",
              "",
              "printf u3 > @T@/u3",
              "copyup @T@/u3 @S@/u3b",
              "test \"$(cat @S@/u3b)\" = u3 && test \"$(cat @S@/u3)\" = u3",
              ""),
          new Case(
              "up file, testbed outside, host inside",
              "",
              "printf u4 > @O@/u4",
              "copyup @O@/u4 @S@/u4",
              "test \"$(cat @S@/u4)\" = u4",
              "test \"$(cat @T@/u4)\" = u4"),
          new Case(
              "up file, the same file at both ends",
              "",
              "printf u5 > @T@/u5",
              "copyup @T@/u5 @S@/u5",
              "test \"$(cat @S@/u5)\" = u5",
              "test \"$(cat @T@/u5)\" = u5"),
          new Case(
              "up file, an executable stays executable",
              "",
              "printf '#!/bin/sh\\n' > @O@/u6; chmod 755 @O@/u6",
              "copyup @O@/u6 @H@/u6",
              "test -x @H@/u6",
              ""),
          new Case(
              "up directory, testbed inside, host outside",
              "",
              "mkdir -p @T@/v1/sub; printf v > @T@/v1/sub/f",
              "copyup @T@/v1/ @H@/v1/",
              "test \"$(cat @H@/v1/sub/f)\" = v",
              ""),
          new Case(
              "up directory, testbed outside, host outside, merging",
              "mkdir -p @H@/v2/keep",
              "mkdir -p @O@/v2/sub; printf w > @O@/v2/sub/f",
              "copyup @O@/v2/ @H@/v2/",
              "test -d @H@/v2/keep && test \"$(cat @H@/v2/sub/f)\" = w",
              ""),
          new Case(
              "up directory, testbed outside, host inside",
              "",
              "mkdir -p @O@/v3; printf x > @O@/v3/f",
              "copyup @O@/v3/ @S@/v3/",
              "test \"$(cat @S@/v3/f)\" = x",
              "test \"$(cat @T@/v3/f)\" = x"),
          new Case(
              "up directory, the same directory at both ends",
              "",
              "mkdir -p @T@/v4; printf y > @T@/v4/f",
              "copyup @T@/v4/ @S@/v4/",
              "test \"$(cat @S@/v4/f)\" = y",
              "test \"$(cat @T@/v4/f)\" = y"));

  /** A server to run the cases against, as {@code user} (null: root). */
  record Server(String name, String program, String user, List<String> options) {
    @Override
    public String toString() {
      return name;
    }
  }

  static Stream<Arguments> servers() {
    String uchroot = E2e.distributionDir().resolve("bin/autopkgtest-virt-uchroot").toString();
    return Stream.of(
        Arguments.of(
            new Server(
                "reference, root",
                "autopkgtest-virt-unshare",
                null,
                List.of("--prefix=@W@/unpack."))),
        Arguments.of(new Server("uchroot, root, overlay", uchroot, null, List.of())),
        Arguments.of(
            new Server(
                "uchroot, root, unpack",
                uchroot,
                null,
                List.of("--rootfs-mode=unpack", "--prefix=@W@/unpack."))),
        // The tarball as sbuild users name it: "-t ~/.cache/sbuild/...", with an equals sign.
        Arguments.of(
            new Server(
                "uchroot, unprivileged, overlay",
                uchroot,
                E2e.testUser(),
                List.of("--tarball=~/bookworm.tar"))),
        Arguments.of(
            new Server(
                "uchroot, unprivileged, unpack",
                uchroot,
                E2e.testUser(),
                List.of("--rootfs-mode=unpack"))));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("servers")
  void everyCombinationCopiesAsTheReferenceDoes(Server server) throws Exception {
    E2e.requireRoot();
    Path work = Files.createTempDirectory("uchroot-copies.");
    Path home = work.resolve("home");
    Path hostDir = work.resolve("host");
    Files.createDirectories(home);
    Files.createDirectories(hostDir);
    Files.createSymbolicLink(home.resolve("bookworm.tar"), E2e.debianTarball());
    if (server.user() != null) {
      E2e.chownTree(work, server.user());
    }
    List<String> argv = new ArrayList<>();
    if (server.user() != null) {
      argv.addAll(List.of("runuser", "-u", server.user(), "--"));
    }
    argv.addAll(List.of("env", "HOME=" + home, "TMPDIR=" + work, "PATH=" + E2e.childPath()));
    Map<String, String> engine = new LinkedHashMap<>();
    E2e.throughEngine(engine, work.resolve("run"));
    engine.forEach((k, v) -> argv.add(k + "=" + v));
    argv.add(server.program());
    if (server.options().stream().noneMatch(o -> o.startsWith("--tarball"))) {
      argv.addAll(List.of("-t", E2e.debianTarball().toString()));
    }
    server.options().forEach(option -> argv.add(option.replace("@W@", work.toString())));
    Process process =
        new ProcessBuilder(argv)
            .redirectError(
                ProcessBuilder.Redirect.appendTo(
                    E2e.logDir()
                        .resolve("copies-" + server.name().replaceAll("[^A-Za-z]+", "-") + ".log")
                        .toFile()))
            .start();
    List<String> failures = new ArrayList<>();
    try (Conversation c = new Conversation(process)) {
      assertEquals("ok", c.answer());
      String open = c.ask("open");
      assertTrue(open.startsWith("ok /"), open);
      String downtmp = open.substring(3);
      String downtmpHost =
          c.ask("capabilities")
              .lines()
              .flatMap(l -> Stream.of(l.split(" ")))
              .filter(w -> w.startsWith("downtmp-host="))
              .map(w -> w.substring(13))
              .findFirst()
              .orElseThrow();
      // In $TMPDIR, or where --prefix says, as Python's mkdtemp places the reference's.
      String prefix =
          server.options().stream().anyMatch(o -> o.startsWith("--prefix"))
              ? work + "/unpack."
              : work + "/";
      assertTrue(downtmpHost.startsWith(prefix), downtmpHost + " is not in " + prefix);
      List<String> exec = new ArrayList<>();
      for (String part : c.ask("print-execute-command").substring(3).split(",")) {
        exec.add(VirtServerProcess.unquote(part));
      }
      Map<String, String> paths =
          Map.of(
              "@H@", hostDir.toString(), "@S@", downtmpHost, "@T@", downtmp, "@O@", "/srv/copies");
      String ok = inTestbed(server, exec, "mkdir -p /srv/copies");
      assertEquals("", ok, "cannot prepare the testbed");
      for (Case copy : CASES) {
        String failure =
            onHost(server, fill(copy.host(), paths))
                + inTestbed(server, exec, fill(copy.testbed(), paths));
        String request = fill(copy.request(), paths);
        String answer = c.ask(request);
        if (!answer.equals("ok")) {
          failure += "answered '" + answer + "'; ";
        } else {
          failure +=
              onHost(server, fill(copy.hostAfter(), paths))
                  + inTestbed(server, exec, fill(copy.testbedAfter(), paths));
        }
        if (!failure.isEmpty()) {
          failures.add(copy.name() + " (" + request + "): " + failure);
        }
      }
      assertEquals("ok", c.ask("close"));
      c.send("quit");
      assertTrue(process.waitFor(LIMIT.toSeconds(), TimeUnit.SECONDS), "the server did not quit");
      assertEquals(0, process.exitValue());
    } finally {
      process.destroyForcibly();
      new ProcessBuilder("rm", "-rf", "--one-file-system", work.toString()).start().waitFor();
    }
    assertEquals(List.of(), failures, server.name());
  }

  private static String fill(String script, Map<String, String> paths) {
    for (var path : paths.entrySet()) {
      script = script.replace(path.getKey(), path.getValue());
    }
    return script;
  }

  /** Runs {@code script} on the host as the server's user: "" if it succeeded, else why not. */
  private static String onHost(Server server, String script) throws Exception {
    if (script.isEmpty()) {
      return "";
    }
    List<String> argv = new ArrayList<>();
    if (server.user() != null) {
      argv.addAll(List.of("runuser", "-u", server.user(), "--"));
    }
    argv.addAll(List.of("sh", "-ec", script));
    return outcome("on the host", script, argv);
  }

  /** Runs {@code script} in the testbed as autopkgtest does: "" if it succeeded, else why not. */
  private static String inTestbed(Server server, List<String> exec, String script)
      throws Exception {
    if (script.isEmpty()) {
      return "";
    }
    List<String> argv = new ArrayList<>();
    if (server.user() != null) {
      argv.addAll(List.of("runuser", "-u", server.user(), "--"));
    }
    argv.addAll(exec);
    argv.addAll(List.of("sh", "-ec", script));
    return outcome("in the testbed", script, argv);
  }

  private static String outcome(String where, String script, List<String> argv) throws Exception {
    Process p = new ProcessBuilder(argv).redirectErrorStream(true).start();
    p.getOutputStream().close();
    CompletableFuture<byte[]> out =
        CompletableFuture.supplyAsync(
            () -> {
              try {
                return p.getInputStream().readAllBytes();
              } catch (IOException e) {
                return new byte[0];
              }
            });
    if (!p.waitFor(LIMIT.toSeconds(), TimeUnit.SECONDS)) {
      p.destroyForcibly();
      return where + ": '" + script + "' did not end; ";
    }
    if (p.exitValue() == 0) {
      return "";
    }
    return where
        + ": '"
        + script
        + "' failed ("
        + p.exitValue()
        + "): "
        + new String(out.get(), StandardCharsets.UTF_8).strip()
        + "; ";
  }

  /** The protocol, one request and one answer at a time. */
  private static final class Conversation implements AutoCloseable {
    private final BufferedReader answers;
    private final OutputStream requests;

    Conversation(Process process) {
      this.answers =
          new BufferedReader(
              new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
      this.requests = process.getOutputStream();
    }

    String answer() throws IOException {
      String line = answers.readLine();
      return line == null ? "(end of file)" : line;
    }

    void send(String request) throws IOException {
      requests.write((request + "\n").getBytes(StandardCharsets.UTF_8));
      requests.flush();
    }

    String ask(String request) throws IOException {
      send(request);
      return answer();
    }

    @Override
    public void close() throws IOException {
      requests.close();
    }
  }
}
