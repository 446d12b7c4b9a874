package org.uchroot.adapter.virt;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import org.junit.jupiter.api.Test;
import org.uchroot.engine.Engine;
import org.uchroot.engine.UchrootException;

/**
 * Conversations that never open a testbed, so need no engine: input lines, then the exact answers,
 * failure message and exit status, as recorded from autopkgtest-virt-unshare 5.28
 * (docs/protocol.md) apart from the capabilities, which differ on purpose.
 */
class VirtServerTranscriptTest {

  private static final String CAPABILITIES =
      "ok revert revert-full-system root-on-testbed suggested-normal-user=uchroot"
          + " uchroot-status uchroot-interrupt";

  @Test
  void answersCapabilitiesTheSameEveryTime() {
    assertConversation(
        "capabilities\ncapabilities\nquit\n", 0, "", "ok", CAPABILITIES, CAPABILITIES);
  }

  @Test
  void skipsBlankLinesAndServesALastLineWithoutNewline() {
    assertConversation("\n   \ncapabilities\n\t\nquit", 0, "", "ok", CAPABILITIES);
  }

  @Test
  void auxverbDebugFailIsOk() {
    assertConversation("auxverb_debug_fail\nauxverb-debug-fail\nquit\n", 0, "", "ok", "ok", "ok");
  }

  @Test
  void statusWorksWhenClosed() {
    assertConversation("status\nquit\n", 0, "", "ok", "ok state=closed jobs=0 interrupts=0");
  }

  @Test
  void endOfFileIsAFailure() {
    assertConversation("", 12, failure("end of file - caller quit?"), "ok");
    assertConversation(
        "capabilities\n", 12, failure("end of file - caller quit?"), "ok", CAPABILITIES);
  }

  @Test
  void refusesWhatNeedsAnOpenTestbed() {
    assertConversation("close\n", 12, failure("`close' when not open"), "ok");
    assertConversation("revert\n", 12, failure("`revert' when not open"), "ok");
    assertConversation(
        "print-execute-command\n", 12, failure("`print-execute-command' when not open"), "ok");
    assertConversation("reboot\n", 12, failure("`reboot' when not open"), "ok");
    assertConversation("shell /tmp\n", 12, failure("`shell' when not open"), "ok");
    assertConversation("interrupt\n", 12, failure("`interrupt' when not open"), "ok");
    assertConversation("copyup a b\n", 12, failure("copyup when not open"), "ok");
    assertConversation("copydown /etc/ /tmp/x\n", 12, failure("copydown when not open"), "ok");
  }

  @Test
  void failsOnBadCommands() {
    assertConversation(
        "capabilities\nfoo\n", 12, failure("unknown command `foo'"), "ok", CAPABILITIES);
    assertConversation(
        "capabilities%20x\n", 12, failure("unknown command `capabilities%20x'"), "ok");
    assertConversation(
        "capabilities x\n", 12, failure("too many arguments to command `capabilities'"), "ok");
    assertConversation("quit x\n", 12, failure("too many arguments to command `quit'"), "ok");
    assertConversation(
        "copydown a\n", 12, failure("too few arguments to command `copydown'"), "ok");
    assertConversation("shell\n", 12, failure("too few arguments to command `shell'"), "ok");
    assertConversation("reboot a b\n", 12, failure("too many arguments to command `reboot'"), "ok");
    assertConversation(
        "%63apabilities\n%63apabilities x\n",
        12, failure("too many arguments to command `%63apabilities'"), "ok", CAPABILITIES);
    assertConversation(
        "capabilities\rquit\r\n",
        12,
        failure("too many arguments to command `capabilities'"),
        "ok");
  }

  @Test
  void reportsWhyItCannotOpen() {
    assertConversation(
        "open\n", 12, failure("Unable to find chroot in /nowhere/.cache/sbuild"), "ok");
  }

  @Test
  void stopsAfterTheFirstFailure() {
    assertConversation("foo\ncapabilities\n", 12, failure("unknown command `foo'"), "ok");
  }

  private static String failure(String message) {
    return "<VirtSubproc>: failure: " + message + "\n";
  }

  private static void assertConversation(
      String input, int status, String stderr, String... answers) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    ByteArrayOutputStream err = new ByteArrayOutputStream();
    VirtServer server =
        new VirtServer(
            new VirtServer.Settings(
                () -> {
                  throw new UchrootException("Unable to find chroot in /nowhere/.cache/sbuild");
                },
                "uchroot",
                Path.of("/nonexistent-runtime-dir"),
                List.of("/usr/libexec/uchroot/uchroot-exec"),
                Duration.ofSeconds(300),
                Path.of("/")),
            CompletableFuture.<Engine>failedFuture(new UchrootException("no engine in this test")),
            new ByteArrayInputStream(input.getBytes(StandardCharsets.UTF_8)),
            out,
            new PrintStream(err, true, StandardCharsets.UTF_8));
    int exit = server.serve();
    assertEquals(
        String.join("\n", answers) + "\n" + "exit " + status + "\n" + stderr,
        out.toString(StandardCharsets.UTF_8)
            + "exit "
            + exit
            + "\n"
            + err.toString(StandardCharsets.UTF_8),
        "input: " + input);
  }
}
