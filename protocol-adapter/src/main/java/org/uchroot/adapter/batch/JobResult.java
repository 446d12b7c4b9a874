package org.uchroot.adapter.batch;

import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.Set;

/**
 * How a job ended, after its last attempt.
 *
 * @param exitCode the runner's, or the shell command's; empty where it never ran to an end
 * @param attempts how often it ran (retries of a tmpfail included)
 * @param tests per-test verdicts of an autopkgtest job, in its summary's order
 * @param reason for {@code error} and {@code interrupted}: what happened, in one line
 */
public record JobResult(
    String id,
    PlanJob.Kind kind,
    JobStatus status,
    OptionalInt exitCode,
    Duration duration,
    int attempts,
    List<TestVerdict> tests,
    String reason) {

  public JobResult {
    Objects.requireNonNull(id, "id");
    Objects.requireNonNull(kind, "kind");
    Objects.requireNonNull(status, "status");
    Objects.requireNonNull(exitCode, "exitCode");
    Objects.requireNonNull(duration, "duration");
    tests = List.copyOf(tests);
    Objects.requireNonNull(reason, "reason");
  }

  /** One test of an autopkgtest run: its name and autopkgtest's verdict (PASS, FAIL, SKIP...). */
  public record TestVerdict(String name, String verdict) {
    public TestVerdict {
      Objects.requireNonNull(name, "name");
      Objects.requireNonNull(verdict, "verdict");
    }

    /** What autopkgtest's summary says of a test. */
    private static final Set<String> VERDICTS = Set.of("PASS", "FAIL", "SKIP", "FLAKY");

    /**
     * The lines of autopkgtest's {@code --summary-file}: {@code NAME VERDICT [DETAIL]}; lines of
     * other forms, such as the text of a setup command that failed, are left out.
     */
    public static List<TestVerdict> ofSummary(String summary) {
      return summary
          .lines()
          .map(String::strip)
          .map(line -> line.split("\\s+", 3))
          .filter(words -> words.length >= 2 && VERDICTS.contains(words[1]))
          .map(words -> new TestVerdict(words[0], words[1]))
          .toList();
    }
  }
}
