package org.uchroot.adapter.batch;

import java.io.PrintStream;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import jnr.posix.POSIXFactory;

/**
 * What a batch says as it goes: a timestamped line on stderr as each job starts and ends, with the
 * counts so far, and with {@code --events jsonl} one JSON object per event on stdout; a summary
 * table at the end. On a terminal, a live status stays below those lines, as cargo's and apt's
 * does: the counts, an ETA and each running job with its time so far, redrawn every second and at
 * each event.
 *
 * <p>The listener's calls come on the batch's stream threads and the redraws on a daemon thread of
 * this object's own; they take turns on its lock. The caller owns both streams and closes them;
 * {@link #close()}, or {@link #summary}, ends the live status and its thread.
 */
public final class Progress implements Batch.Listener, AutoCloseable {

  private static final DateTimeFormatter CLOCK = DateTimeFormatter.ofPattern("HH:mm:ss");

  /** Running jobs shown a line each, at most; past that, the last line counts the rest. */
  static final int RUNNING_LINES = 8;

  static final String CSI = "\033[";

  /** Erases from the cursor's line to the end of the screen. */
  static final String ERASE_DOWN = "\r" + CSI + "J";

  /**
   * Auto-wrap off while the block is drawn, and back on after: a line wider than the terminal is
   * cut rather than wrapped, so the block takes exactly one row a line and its erasure, which
   * counts rows, erases all of it.
   */
  static final String NO_WRAP = CSI + "?7l";

  static final String WRAP = CSI + "?7h";

  private final PrintStream lines;
  private final PrintStream events;
  private final int total;
  private final Clock clock;
  private final Instant begun;
  private final Map<JobStatus, Integer> counts = new EnumMap<>(JobStatus.class);

  /**
   * By id, in the order they started; a job's next attempt keeps its place. A tmpfail's back-off
   * shows as its attempt still running: the listener hears of no attempt's end but the last.
   */
  private final Map<String, Running> running = new LinkedHashMap<>();

  /** Redraws the block every second; null where there is none. */
  private final ScheduledExecutorService ticker;

  private int done;

  /** Whether the block is on: on a terminal, until {@link #close()}. */
  private boolean live;

  /** The block's rows on the screen, right above the cursor. */
  private int drawn;

  private record Running(PlanJob.Kind kind, int attempt, Instant since) {}

  /**
   * Plain lines only, with the system's clock: for a stderr that is no terminal.
   *
   * @param lines where the progress lines go (stderr)
   * @param events where the JSON events go (stdout), or null for none
   */
  public Progress(PrintStream lines, PrintStream events, int total) {
    this(lines, events, total, false, Clock.systemDefaultZone());
  }

  /**
   * The lines, and where {@code terminal}, the live status below them, until {@link #close()}.
   *
   * @param lines where the progress lines go (stderr)
   * @param events where the JSON events go (stdout), or null for none
   * @param terminal whether {@code lines} is a terminal, which then shows the live status
   * @param clock for the lines' times, the jobs' times so far and the ETA
   */
  public Progress(PrintStream lines, PrintStream events, int total, boolean terminal, Clock clock) {
    this.lines = lines;
    this.events = events;
    this.total = total;
    this.clock = clock;
    this.begun = clock.instant();
    this.live = terminal;
    if (terminal) {
      // A daemon, so that a batch which fails before close() still lets the JVM end.
      ticker =
          Executors.newSingleThreadScheduledExecutor(
              task -> {
                Thread thread = new Thread(task, "batch-progress");
                thread.setDaemon(true);
                return thread;
              });
      ticker.scheduleWithFixedDelay(this::redraw, 1, 1, TimeUnit.SECONDS);
    } else {
      ticker = null;
    }
  }

  /**
   * Whether stderr is a terminal the live status can be drawn on: a tty whose {@code TERM} moves
   * the cursor ({@code dumb}, as in Emacs's shell, does not). {@link System#console()} will not do:
   * it asks about stdin and stdout. Loads jnr-posix, a fifth of a second.
   */
  public static boolean stderrIsTerminal() {
    String term = System.getenv("TERM");
    if (term == null || term.isEmpty() || term.equals("dumb")) {
      return false;
    }
    try {
      // By number: isatty(FileDescriptor) reads the descriptor's field by reflection, which Java
      // 17 refuses without --add-opens; jnr-posix then warns on stderr and answers false.
      return POSIXFactory.getNativePOSIX().isatty(2) == 1;
    } catch (RuntimeException | LinkageError e) {
      // No native libc through jnr: the plain lines do.
      return false;
    }
  }

  @Override
  public synchronized void started(PlanJob job, int attempt) {
    running.put(job.id(), new Running(job.kind(), attempt, clock.instant()));
    say(
        "started "
            + job.id()
            + " ("
            + job.kind()
            + (attempt > 1 ? ", attempt " + attempt : "")
            + ")",
        () -> ResultFiles.startedEvent(job, attempt));
  }

  @Override
  public synchronized void finished(PlanJob job, JobResult result) {
    done++;
    counts.merge(result.status(), 1, Integer::sum);
    running.remove(job.id());
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
            + " tmpfail]",
        () -> ResultFiles.event("finished", result));
  }

  /** Every job, one line each, in the plan's order; the live status ends first, for good. */
  public void summary(List<JobResult> results) {
    close();
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

  /** Erases the live status and stops its thread; the lines go on plain. Idempotent. */
  @Override
  public void close() {
    synchronized (this) {
      if (live) {
        lines.print(erasure());
        lines.flush();
        drawn = 0;
        live = false;
      }
    }
    if (ticker != null) {
      // Its pending redraw is dropped; one under way finds the block off.
      ticker.shutdown();
    }
  }

  /** Draws the block again, with the times as they are now; what the ticker calls each second. */
  synchronized void redraw() {
    if (live) {
      draw();
    }
  }

  /**
   * The block's lines as they are now: the counts and the ETA, then each running job with its kind,
   * time so far and attempt if not the first.
   */
  synchronized List<String> render() {
    Instant now = clock.instant();
    List<String> block = new ArrayList<>();
    block.add(status(now));
    List<Map.Entry<String, Running>> jobs = List.copyOf(running.entrySet());
    int shown = jobs.size() <= RUNNING_LINES ? jobs.size() : RUNNING_LINES - 1;
    int width =
        Math.max(1, jobs.stream().limit(shown).mapToInt(e -> e.getKey().length()).max().orElse(1));
    for (Map.Entry<String, Running> job : jobs.subList(0, shown)) {
      Running run = job.getValue();
      block.add(
          String.format(
              Locale.ROOT,
              "  %-" + width + "s  %-11s  %6s%s",
              job.getKey(),
              run.kind(),
              clockTime(Duration.between(run.since(), now)),
              run.attempt() > 1 ? "  attempt " + run.attempt() : ""));
    }
    if (shown < jobs.size()) {
      block.add("  ... and " + (jobs.size() - shown) + " more");
    }
    return block;
  }

  private String status(Instant now) {
    StringBuilder status =
        new StringBuilder()
            .append(done)
            .append('/')
            .append(total)
            .append(" done: ")
            .append(count(JobStatus.pass))
            .append(" pass, ")
            .append(count(JobStatus.fail))
            .append(" fail, ")
            .append(count(JobStatus.tmpfail))
            .append(" tmpfail");
    for (JobStatus rarer : List.of(JobStatus.neutral, JobStatus.error, JobStatus.interrupted)) {
      if (count(rarer) > 0) {
        status.append(", ").append(count(rarer)).append(' ').append(rarer);
      }
    }
    return status
        .append("; ")
        .append(running.size())
        .append(" running; ETA ")
        .append(eta(now))
        .toString();
  }

  /** The time so far for each job done, times the jobs left; none before the first is done. */
  private String eta(Instant now) {
    if (done == 0) {
      return "--";
    }
    Duration elapsed = Duration.between(begun, now);
    return clockTime(elapsed.multipliedBy(Math.max(0, total - done)).dividedBy(done));
  }

  /** {@code 42s}, {@code 1m05s}, {@code 2h03m07s}. */
  static String clockTime(Duration duration) {
    // A wall clock set back makes no negative times.
    long seconds = Math.max(0, duration.toSeconds());
    if (seconds < 60) {
      return seconds + "s";
    }
    if (seconds < 3600) {
      return String.format(Locale.ROOT, "%dm%02ds", seconds / 60, seconds % 60);
    }
    return String.format(
        Locale.ROOT, "%dh%02dm%02ds", seconds / 3600, seconds % 3600 / 60, seconds % 60);
  }

  private int count(JobStatus status) {
    return counts.getOrDefault(status, 0);
  }

  private static String seconds(JobResult result) {
    return String.format(Locale.ROOT, "%.1f s", result.duration().toMillis() / 1000.0);
  }

  private void say(String line, Supplier<String> json) {
    String stamped = LocalTime.now(clock).format(CLOCK) + " " + line;
    if (!live) {
      lines.println(stamped);
      event(json);
      return;
    }
    // The line takes the block's place and the block comes back below it; the event goes in
    // between, in case stdout is the same terminal.
    lines.print(erasure() + stamped + "\n");
    drawn = 0;
    event(json);
    draw();
  }

  private void draw() {
    List<String> block = render();
    StringBuilder out = new StringBuilder(erasure()).append(NO_WRAP);
    for (String line : block) {
      out.append(line).append('\n');
    }
    lines.print(out.append(WRAP));
    lines.flush();
    drawn = block.size();
  }

  /** Up to the block's first row, and everything from there down erased. */
  private String erasure() {
    return drawn == 0 ? "" : CSI + drawn + "A" + ERASE_DOWN;
  }

  private void event(Supplier<String> json) {
    if (events != null) {
      events.println(json.get());
    }
  }
}
