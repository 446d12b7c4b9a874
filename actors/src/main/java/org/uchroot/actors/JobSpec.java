package org.uchroot.actors;

import java.util.List;
import java.util.Objects;

/** One command to run in a testbed: its argv (never empty) and its standard streams. */
public record JobSpec(List<String> argv, JobStdio stdio) {
  public JobSpec {
    argv = List.copyOf(argv);
    if (argv.isEmpty()) {
      throw new IllegalArgumentException("a job needs a command");
    }
    Objects.requireNonNull(stdio, "stdio");
  }
}
