package org.uchroot.adapter.batch;

import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Set;

/**
 * A batch: its jobs, in the order the plan gives them, and how many run at once.
 *
 * @param name names the default results directory: the plan file's name without its extension
 * @param parallelism the jobs run at once, unless the command line says otherwise
 */
public record Plan(String name, int parallelism, List<PlanJob> jobs) {

  public Plan {
    Objects.requireNonNull(name, "name");
    if (parallelism < 1) {
      throw new IllegalArgumentException("a plan runs at least one job at once: " + parallelism);
    }
    jobs = List.copyOf(jobs);
    Set<String> ids = new HashSet<>();
    for (PlanJob job : jobs) {
      if (!ids.add(job.id())) {
        throw new IllegalArgumentException("two jobs have the id " + job.id());
      }
    }
  }

  /** The name of a plan read from {@code file}: its file name without the extension. */
  static String nameOf(Path file) {
    String name = file.getFileName().toString();
    int dot = name.lastIndexOf('.');
    return dot > 0 ? name.substring(0, dot) : name;
  }
}
