package org.uchroot.adapter.protocol;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Transcripts of the codec: each input line, then what it decodes to ({@code VERB [args]}, {@code
 * (skipped)}, or {@code failure: MESSAGE}), as autopkgtest-virt-unshare 5.28 decodes the same
 * lines.
 */
class RequestTest {

  @Test
  void decodesCommandsAsTheReference() {
    assertTranscript(
        "capabilities", "CAPABILITIES []",
        "print-execute-command", "PRINT_EXECUTE_COMMAND []",
        "print_execute-command", "PRINT_EXECUTE_COMMAND []",
        "auxverb_debug_fail", "AUXVERB_DEBUG_FAIL []",
        "auxverb-debug-fail", "AUXVERB_DEBUG_FAIL []",
        "%63apabilities", "CAPABILITIES []",
        "copydown /tmp/a%20b /tmp/%E2%82%AC", "COPYDOWN [/tmp/a b, /tmp/€]",
        "copyup\t/x/   \t/y/\u000b", "COPYUP [/x/, /y/]",
        "shell /tmp A=1 B=2%203", "SHELL [/tmp, A=1, B=2 3]",
        "reboot prepare-only", "REBOOT [prepare-only]",
        "status", "STATUS []",
        "interrupt", "INTERRUPT []");
  }

  @Test
  void skipsBlankLinesAsTheReference() {
    assertTranscript(
        "\u0020", "(skipped)",
        "\t\r", "(skipped)",
        "\u00a0\u2003", "(skipped)");
    assertEquals(List.of("(skipped)"), decode(""));
  }

  @Test
  void whitespaceIsPythonWhitespace() {
    assertTranscript(
        "capabilities\u00a0", "CAPABILITIES []",
        "capabilities\rquit\r", "failure: too many arguments to command `capabilities'",
        "copydown\u001fa\u0085b", "COPYDOWN [a, b]");
  }

  @Test
  void failsWithTheReferencesWords() {
    assertTranscript(
        "foo", "failure: unknown command `foo'",
        "Capabilities", "failure: unknown command `Capabilities'",
        "capabilities%20x", "failure: unknown command `capabilities%20x'",
        "foo-bar%20x", "failure: unknown command `foo-bar%20x'",
        "capabilities x", "failure: too many arguments to command `capabilities'",
        "%63apabilities x", "failure: too many arguments to command `%63apabilities'",
        "quit now", "failure: too many arguments to command `quit'",
        "copydown a", "failure: too few arguments to command `copydown'",
        "copydown a b c", "failure: too many arguments to command `copydown'",
        "shell", "failure: too few arguments to command `shell'",
        "reboot a b", "failure: too many arguments to command `reboot'",
        "cmd_open", "failure: unknown command `cmd_open'");
  }

  @Test
  void namesCommandsInMessagesAsTheReference() {
    assertEquals("`close' when not open", ProtocolError.notOpen(Verb.CLOSE).getMessage());
    assertEquals(
        "`print-execute-command' when not open",
        ProtocolError.notOpen(Verb.PRINT_EXECUTE_COMMAND).getMessage());
    assertEquals(
        "`reboot' when `reboot' not advertised",
        ProtocolError.notAdvertised(Verb.REBOOT).getMessage());
    assertEquals("`open' when already open", ProtocolError.alreadyOpen().getMessage());
    assertEquals("copy%75p when not open", ProtocolError.copyNotOpen("copy%75p").getMessage());
    assertEquals(
        "copydown paths must agree about directoryness (presence or absence of trailing /)",
        ProtocolError.copyDirectoryness("copydown").getMessage());
    assertEquals("end of file - caller quit?", ProtocolError.endOfFile().getMessage());
  }

  @Test
  void formatsAnswers() {
    assertEquals("ok", Response.ok().line());
    assertEquals("ok /tmp/a%20b", Response.ok(Response.quoted("/tmp/a b")).line());
    assertEquals(
        "ok /usr/lib/x,/run/a%2Cb/exec.sock",
        Response.ok(Response.commaList(List.of("/usr/lib/x", "/run/a,b/exec.sock"))).line());
    assertEquals("downtmp-host=/t%20t", Response.keyValue("downtmp-host", "/t t"));
    assertEquals("copy-failed", Response.failed("copy-failed").line());
  }

  /** Pairs of an input line and what it decodes to. */
  private static void assertTranscript(String... transcript) {
    List<String> expected = new ArrayList<>();
    List<String> actual = new ArrayList<>();
    for (int i = 0; i < transcript.length; i += 2) {
      String input = transcript[i].replace("\r", "\\r");
      expected.add(input + " => " + transcript[i + 1]);
      actual.add(input + " => " + String.join("", decode(transcript[i])));
    }
    assertEquals(String.join("\n", expected), String.join("\n", actual));
  }

  private static List<String> decode(String line) {
    try {
      return Request.parse(line)
          .map(r -> List.of(r.verb() + " " + r.args()))
          .orElse(List.of("(skipped)"));
    } catch (ProtocolError e) {
      return List.of("failure: " + e.getMessage());
    }
  }
}
