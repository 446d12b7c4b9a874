package org.uchroot.adapter.batch;

import java.io.PrintStream;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Supplier;

/**
 * What a batch says as it goes: a timestamped line on stderr as each job starts and ends, with the
 * counts so far, and with {@code --events jsonl} one JSON object per event on stdout; a summary
 * table at the end.
 */
public final class Progress implements Batch.Listener {

  private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss");

  private final PrintStream lines;
  private final PrintStream events;
  private final int total;
  private final Map<JobStatus, Integer> counts = new EnumMap<>(JobStatus.class);
  private int done;

  /**
   * @param lines where the progress lines go (stderr)
   * @param events where the JSON events go (stdout), or null for none
   */
  public Progress(PrintStream lines, PrintStream events, int total) {
    this.lines = lines;
    this.events = events;
    this.total = total;
  }

  @Override
  public synchronized void started(PlanJob job, int attempt) {
    say(
        "started "
            + job.id()
            + " ("
            + job.kind()
            + (attempt > 1 ? ", attempt " + attempt : "")
            + ")");
    event(() -> ResultFiles.startedEvent(job, attempt));
  }

  @Override
  public synchronized void finished(PlanJob job, JobResult result) {
    done++;
    counts.merge(result.status(), 1, Integer::sum);
    say(
        result.id()
            + ": "
            + result.status()
            + (result.reason().isEmpty() ? "" : " (" + result.reason() + ")")
            + " in "
            + seconds(result)
            + " ["
            + done
            + "/"
            + total
            + " done: "
            + count(JobStatus.pass)
            + " pass, "
            + count(JobStatus.fail)
            + " fail, "
            + count(JobStatus.tmpfail)
            + " tmpfail]");
    event(() -> ResultFiles.event("finished", result));
  }

  /** Every job, one line each, in the plan's order. */
  public void summary(List<JobResult> results) {
    int width = Math.max(2, results.stream().mapToInt(r -> r.id().length()).max().orElse(2));
    String format = "%-" + width + "s  %-11s  %-11s  %9s  %s%n";
    lines.printf(Locale.ROOT, format, "id", "kind", "status", "duration", "attempts");
    for (JobResult result : results) {
      lines.printf(
          Locale.ROOT,
          format,
          result.id(),
          result.kind(),
          result.status(),
          seconds(result),
          result.attempts());
    }
  }

  private int count(JobStatus status) {
    return counts.getOrDefault(status, 0);
  }

  private static String seconds(JobResult result) {
    return String.format(Locale.ROOT, "%.1f s", result.duration().toMillis() / 1000.0);
  }

  private void say(String line) {
    lines.println(LocalTime.now().format(CLOCK) + " " + line);
  }

  private void event(Supplier<String> json) {
    if (events != null) {
      events.println(json.get());
    }
  }
}
