package org.uchroot.adapter.batch;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/** One job of a batch plan: what it runs, in a testbed made from {@code tarball}. */
public sealed interface PlanJob {

  /** Unique in its plan; names the job's directory under the results. */
  String id();

  Kind kind();

  Path tarball();

  /** The most the job may take, each attempt; empty: no limit of the batch's own. */
  Optional<Duration> timeout();

  Retries retries();

  /**
   * The file or tree the runner is given (a .dsc, a .changes, a source tree), where the job names
   * one rather than a package: what must exist for the job to start.
   */
  default Optional<Path> localSource() {
    return Optional.empty();
  }

  /** A source as the plan reader leaves it: an absolute path, or a package's name. */
  private static Optional<Path> localPath(String source) {
    return source.startsWith("/") ? Optional.of(Path.of(source)) : Optional.empty();
  }

  /** The job kinds, as plans and results name them. */
  enum Kind {
    autopkgtest,
    sbuild,
    shell
  }

  /** How often a job that ended in tmpfail is tried again, and how long to wait before each. */
  record Retries(int tmpfail, Duration backoff) {
    public static final Retries NONE = new Retries(0, Duration.ofSeconds(30));

    public Retries {
      if (tmpfail < 0) {
        throw new IllegalArgumentException("retries of a tmpfail cannot be negative: " + tmpfail);
      }
      Objects.requireNonNull(backoff, "backoff");
    }
  }

  /**
   * autopkgtest on a source package: a name (autopkgtest fetches it in the testbed), or the
   * absolute path of a .dsc, a source tree or a .changes; {@code options} go before its {@code --}.
   */
  record Autopkgtest(
      String id,
      String source,
      List<String> options,
      Path tarball,
      Optional<Duration> timeout,
      Retries retries)
      implements PlanJob {
    public Autopkgtest {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(source, "source");
      options = List.copyOf(options);
      Objects.requireNonNull(tarball, "tarball");
      Objects.requireNonNull(timeout, "timeout");
      Objects.requireNonNull(retries, "retries");
    }

    @Override
    public Kind kind() {
      return Kind.autopkgtest;
    }

    @Override
    public Optional<Path> localSource() {
      return localPath(source);
    }
  }

  /** sbuild of a .dsc (absolute path) or of {@code package_version}, for {@code dist}. */
  record Sbuild(
      String id,
      String source,
      String dist,
      List<String> options,
      Path tarball,
      Optional<Duration> timeout,
      Retries retries)
      implements PlanJob {
    public Sbuild {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(source, "source");
      Objects.requireNonNull(dist, "dist");
      options = List.copyOf(options);
      Objects.requireNonNull(tarball, "tarball");
      Objects.requireNonNull(timeout, "timeout");
      Objects.requireNonNull(retries, "retries");
    }

    @Override
    public Kind kind() {
      return Kind.sbuild;
    }

    @Override
    public Optional<Path> localSource() {
      return localPath(source);
    }
  }

  /** A command line run with {@code sh -c} in a fresh testbed. */
  record Shell(String id, String command, Path tarball, Optional<Duration> timeout, Retries retries)
      implements PlanJob {
    public Shell {
      Objects.requireNonNull(id, "id");
      Objects.requireNonNull(command, "command");
      Objects.requireNonNull(tarball, "tarball");
      Objects.requireNonNull(timeout, "timeout");
      Objects.requireNonNull(retries, "retries");
    }

    @Override
    public Kind kind() {
      return Kind.shell;
    }
  }
}
