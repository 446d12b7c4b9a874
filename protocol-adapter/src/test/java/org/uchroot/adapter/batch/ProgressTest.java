package org.uchroot.adapter.batch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

class ProgressTest {

  private final ByteArrayOutputStream stderr = new ByteArrayOutputStream();
  private final ByteArrayOutputStream stdout = new ByteArrayOutputStream();
  private final Steps clock = new Steps(Instant.parse("2024-05-01T10:00:00Z"));

  @Test
  void anythingButATerminalGetsThePlainLinesAsBefore() {
    PlanJob a = shell("a");
    PlanJob b = shell("b");
    try (Progress progress = progress(2, false)) {
      progress.started(a, 1);
      progress.started(b, 1);
      clock.advance(Duration.ofSeconds(65));
      progress.redraw();
      progress.finished(a, result(a, JobStatus.pass, 65));
      progress.finished(b, result(b, JobStatus.tmpfail, 65));
      progress.summary(List.of(result(a, JobStatus.pass, 65), result(b, JobStatus.tmpfail, 65)));
    }
    assertEquals(
        List.of(
            "10:00:00 started a (shell)",
            "10:00:00 started b (shell)",
            "10:01:05 a: pass in 65.0 s [1/2 done: 1 pass, 0 fail, 0 tmpfail]",
            "10:01:05 b: tmpfail in 65.0 s [2/2 done: 1 pass, 0 fail, 1 tmpfail]",
            "id  kind         status        duration  attempts",
            "a   shell        pass            65.0 s  1",
            "b   shell        tmpfail         65.0 s  1"),
        text(stderr).lines().toList());
    assertEquals(4, text(stdout).lines().count());
    assertFalse(text(stderr).contains("\033"));
    assertFalse(text(stdout).contains("\033"));
  }

  @Test
  void theThreeArgumentOneIsNoTerminalEither() {
    try (Progress progress = new Progress(new PrintStream(stderr), null, 1)) {
      progress.started(shell("a"), 2);
      progress.redraw();
    }
    assertTrue(
        text(stderr).matches("\\d\\d:\\d\\d:\\d\\d started a \\(shell, attempt 2\\)\\R"),
        text(stderr));
  }

  @Test
  void theBlockShowsEachRunningJobWithItsTimeSoFar() {
    try (Progress progress = progress(5, true)) {
      progress.started(autopkgtest("hello"), 1);
      clock.advance(Duration.ofSeconds(20));
      progress.started(shell("smoke-test"), 2);
      clock.advance(Duration.ofSeconds(45));
      progress.redraw();
      List<String> block =
          List.of(
              "0/5 done: 0 pass, 0 fail, 0 tmpfail; 2 running; ETA --",
              "  hello       autopkgtest   1m05s",
              "  smoke-test  shell           45s  attempt 2");
      assertEquals(block, progress.render());
      List<String> screen = new ArrayList<>(screen(stderr));
      assertEquals(
          List.of(
              "10:00:00 started hello (autopkgtest)",
              "10:00:20 started smoke-test (shell, attempt 2)"),
          screen.subList(0, 2));
      assertEquals(block, screen.subList(2, screen.size()));
    }
  }

  @Test
  void theEtaIsTheTimeSoFarPerJobDoneTimesTheJobsLeft() {
    try (Progress progress = progress(4, true)) {
      PlanJob a = shell("a");
      progress.started(a, 1);
      progress.started(shell("b"), 1);
      clock.advance(Duration.ofSeconds(30));
      assertEquals("0/4 done: 0 pass, 0 fail, 0 tmpfail; 2 running; ETA --", status(progress));
      progress.finished(a, result(a, JobStatus.fail, 30));
      clock.advance(Duration.ofSeconds(10));
      // 40 s for one job, three left.
      assertEquals("1/4 done: 0 pass, 1 fail, 0 tmpfail; 1 running; ETA 2m00s", status(progress));
    }
  }

  @Test
  void errorsAndInterruptionsAreCountedWhereThereAreAny() {
    try (Progress progress = progress(3, true)) {
      PlanJob a = shell("a");
      PlanJob b = shell("b");
      progress.finished(a, result(a, JobStatus.error, 0));
      progress.finished(b, result(b, JobStatus.interrupted, 0));
      assertEquals(
          "2/3 done: 0 pass, 0 fail, 0 tmpfail, 1 error, 1 interrupted; 0 running; ETA 0s",
          status(progress));
    }
  }

  @Test
  void manyRunningJobsTakeAtMostEightLines() {
    try (Progress progress = progress(20, true)) {
      for (int i = 0; i < 11; i++) {
        progress.started(shell("job" + i), 1);
      }
      List<String> block = progress.render();
      assertEquals(1 + Progress.RUNNING_LINES, block.size());
      assertTrue(block.get(7).startsWith("  job6 "), block.get(7));
      assertEquals("  ... and 4 more", block.get(8));
    }
  }

  @Test
  void theBlockIsErasedBeforeEachLineAndDrawnAgainBelowIt() {
    try (Progress progress = progress(3, true)) {
      PlanJob a = shell("a");
      progress.started(a, 1);
      progress.started(shell("b"), 1);
      clock.advance(Duration.ofSeconds(2));
      progress.redraw();
      progress.finished(a, result(a, JobStatus.pass, 2));
    }
    String out = text(stderr);
    // Each line but the first comes right after the block's erasure: up the block's rows (a
    // status line and a line a running job), then everything from there down erased.
    Matcher line = Pattern.compile("\\d\\d:\\d\\d:\\d\\d ").matcher(out);
    List<Integer> starts = new ArrayList<>();
    while (line.find()) {
      starts.add(line.start());
    }
    assertEquals(3, starts.size(), out);
    assertEquals(0, starts.get(0));
    assertEquals(erasure(2), out.substring(starts.get(1) - erasure(2).length(), starts.get(1)));
    assertEquals(erasure(3), out.substring(starts.get(2) - erasure(3).length(), starts.get(2)));
    // The block itself is drawn with auto-wrap off, so that it takes a row a line.
    assertTrue(
        out.contains(Progress.NO_WRAP + "0/3 done: 0 pass, 0 fail, 0 tmpfail; 2 running; ETA --\n"),
        out);
    assertTrue(out.contains("  b  shell            2s\n" + Progress.WRAP), out);
  }

  @Test
  void closeLeavesNothingOfTheBlock() {
    Progress progress = progress(2, true);
    PlanJob a = shell("a");
    progress.started(a, 1);
    clock.advance(Duration.ofSeconds(3));
    progress.redraw();
    progress.close();
    assertEquals(List.of("10:00:00 started a (shell)"), screen(stderr));
    String closed = text(stderr);
    assertTrue(closed.endsWith(erasure(2)), closed);
    // Closed: a redraw draws nothing, and a late line is a plain one.
    progress.redraw();
    progress.close();
    assertEquals(closed, text(stderr));
    progress.finished(a, result(a, JobStatus.pass, 3));
    assertEquals(
        closed + "10:00:03 a: pass in 3.0 s [1/2 done: 1 pass, 0 fail, 0 tmpfail]\n", text(stderr));
  }

  @Test
  void theSummaryComesWhereTheBlockWas() {
    try (Progress progress = progress(1, true)) {
      PlanJob a = shell("a");
      progress.started(a, 1);
      clock.advance(Duration.ofSeconds(1));
      progress.finished(a, result(a, JobStatus.pass, 1));
      progress.summary(List.of(result(a, JobStatus.pass, 1)));
      progress.redraw();
    }
    assertEquals(
        List.of(
            "10:00:00 started a (shell)",
            "10:00:01 a: pass in 1.0 s [1/1 done: 1 pass, 0 fail, 0 tmpfail]",
            "id  kind         status        duration  attempts",
            "a   shell        pass             1.0 s  1"),
        screen(stderr));
  }

  @Test
  void eventsOnTheSameTerminalGoAboveTheBlock() {
    ByteArrayOutputStream both = new ByteArrayOutputStream();
    PrintStream terminal = new PrintStream(both, true, StandardCharsets.UTF_8);
    try (Progress progress = new Progress(terminal, terminal, 1, true, clock)) {
      progress.started(shell("a"), 1);
      assertEquals(
          List.of(
              "10:00:00 started a (shell)",
              ResultFiles.startedEvent(shell("a"), 1),
              "0/1 done: 0 pass, 0 fail, 0 tmpfail; 1 running; ETA --",
              "  a  shell            0s"),
          screen(both));
    }
    assertEquals(
        List.of("10:00:00 started a (shell)", ResultFiles.startedEvent(shell("a"), 1)),
        screen(both));
  }

  @Test
  void timesSoFarReadAsOnAClock() {
    assertEquals("0s", Progress.clockTime(Duration.ofMillis(999)));
    assertEquals("59s", Progress.clockTime(Duration.ofSeconds(59)));
    assertEquals("1m05s", Progress.clockTime(Duration.ofSeconds(65)));
    assertEquals("2h03m07s", Progress.clockTime(Duration.ofSeconds(2 * 3600 + 3 * 60 + 7)));
    assertEquals("0s", Progress.clockTime(Duration.ofSeconds(-5)));
  }

  private Progress progress(int total, boolean terminal) {
    return new Progress(
        new PrintStream(stderr, true, StandardCharsets.UTF_8),
        new PrintStream(stdout, true, StandardCharsets.UTF_8),
        total,
        terminal,
        clock);
  }

  private static String erasure(int rows) {
    return Progress.CSI + rows + "A" + Progress.ERASE_DOWN;
  }

  private static String status(Progress progress) {
    return progress.render().get(0);
  }

  private static String text(ByteArrayOutputStream out) {
    return out.toString(StandardCharsets.UTF_8);
  }

  /**
   * The rows a terminal shows after the output, for the little of a terminal the block uses: line
   * feeds (with the tty's carriage return), carriage returns, cursor up, erase down, auto-wrap.
   */
  private static List<String> screen(ByteArrayOutputStream out) {
    String text = text(out);
    List<StringBuilder> rows = new ArrayList<>(List.of(new StringBuilder()));
    int row = 0;
    int column = 0;
    Matcher escape = Pattern.compile("\033\\[(\\??)(\\d*)([A-Za-z])").matcher(text);
    for (int i = 0; i < text.length(); i++) {
      char c = text.charAt(i);
      if (c == '\033') {
        assertTrue(escape.find(i) && escape.start() == i, "unknown escape at " + i + ": " + text);
        String number = escape.group(2);
        switch (escape.group(1) + escape.group(3)) {
          case "A" -> row = Math.max(0, row - (number.isEmpty() ? 1 : Integer.parseInt(number)));
          case "J" -> {
            rows.subList(row + 1, rows.size()).clear();
            rows.get(row).setLength(Math.min(column, rows.get(row).length()));
          }
          case "?l", "?h" -> assertEquals("7", number);
          default ->
              throw new AssertionError("unexpected escape " + escape.group() + " in " + text);
        }
        i = escape.end() - 1;
      } else if (c == '\n') {
        row++;
        column = 0;
        if (row == rows.size()) {
          rows.add(new StringBuilder());
        }
      } else if (c == '\r') {
        column = 0;
      } else {
        StringBuilder current = rows.get(row);
        while (current.length() < column) {
          current.append(' ');
        }
        if (column < current.length()) {
          current.setCharAt(column, c);
        } else {
          current.append(c);
        }
        column++;
      }
    }
    List<String> shown = new ArrayList<>(rows.stream().map(StringBuilder::toString).toList());
    // The row the cursor waits on, below the last line.
    if (shown.get(shown.size() - 1).isEmpty()) {
      shown.remove(shown.size() - 1);
    }
    return shown;
  }

  private static PlanJob shell(String id) {
    return new PlanJob.Shell(
        id, "true", Path.of("/srv/bookworm.tar"), Optional.empty(), PlanJob.Retries.NONE);
  }

  private static PlanJob autopkgtest(String id) {
    return new PlanJob.Autopkgtest(
        id, id, List.of(), Path.of("/srv/bookworm.tar"), Optional.empty(), PlanJob.Retries.NONE);
  }

  private static JobResult result(PlanJob job, JobStatus status, int seconds) {
    return new JobResult(
        job.id(),
        job.kind(),
        status,
        OptionalInt.of(0),
        Duration.ofSeconds(seconds),
        1,
        List.of(),
        "");
  }

  /** A clock that moves only when told: the ticker's redraws then show the same times. */
  private static final class Steps extends Clock {
    private volatile Instant now;

    Steps(Instant start) {
      now = start;
    }

    void advance(Duration by) {
      now = now.plus(by);
    }

    @Override
    public Instant instant() {
      return now;
    }

    @Override
    public ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(ZoneId zone) {
      return this;
    }
  }
}
