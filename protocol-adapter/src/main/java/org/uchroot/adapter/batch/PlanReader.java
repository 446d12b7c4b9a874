package org.uchroot.adapter.batch;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.uchroot.adapter.Durations;

/**
 * Reads a batch plan: YAML ({@code .yaml}, {@code .yml}) with {@code defaults} and {@code jobs}, or
 * any other file as one shell command per line (blank lines and {@code #} comments skipped). Paths
 * in a plan start from the plan's directory. A job's tarball is its own, else the command line's
 * {@code -t}, else the plan's default, else the one sbuild's cache has for this machine.
 */
public final class PlanReader {

  /** What is wrong with a plan, in one line: the file, where in it, and what it takes. */
  public static final class PlanException extends RuntimeException {
    private static final long serialVersionUID = 1L;

    PlanException(String message) {
      super(message);
    }
  }

  /** Job ids name directories: no slash, no leading dot. */
  private static final Pattern ID = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._+-]*");

  private static final Set<String> TOP_KEYS = Set.of("defaults", "jobs");
  private static final Set<String> DEFAULT_KEYS =
      Set.of("tarball", "jobs", "timeout", "retries", "dist");
  private static final Set<String> JOB_KEYS =
      Set.of(
          "id",
          "autopkgtest",
          "sbuild",
          "shell",
          "options",
          "tarball",
          "timeout",
          "retries",
          "dist");
  private static final Set<String> RETRY_KEYS = Set.of("tmpfail", "backoff");
  private static final List<String> KINDS = List.of("autopkgtest", "sbuild", "shell");

  /** What the command line gives a plan. */
  public record CommandLine(
      Optional<Integer> parallelism, Optional<Path> tarball, Optional<Path> foundTarball) {}

  private final Path file;
  private final Path dir;
  private final CommandLine commandLine;

  private PlanReader(Path file, CommandLine commandLine) {
    this.file = file.toAbsolutePath().normalize();
    this.dir = this.file.getParent();
    this.commandLine = commandLine;
  }

  /** Reads {@code file}; throws {@link PlanException} for anything it cannot run. */
  public static Plan read(Path file, CommandLine commandLine) {
    return new PlanReader(file, commandLine).read();
  }

  /** What is wrong with the plan, as every refusal says it: the plan's file first. */
  private PlanException refusal(String what) {
    return new PlanException(file + ": " + what);
  }

  /** Whether {@code file} is read as YAML rather than as command lines. */
  public static boolean isYaml(Path file) {
    String name = file.getFileName().toString();
    return name.endsWith(".yaml") || name.endsWith(".yml");
  }

  private Plan read() {
    String text;
    try {
      text = Files.readString(file);
    } catch (NoSuchFileException e) {
      throw refusal("no such file");
    } catch (IOException e) {
      throw refusal("cannot read it: " + e.getMessage());
    }
    return isYaml(file) ? yaml(text) : lines(text);
  }

  private Plan lines(String text) {
    List<PlanJob> jobs = new ArrayList<>();
    List<String> lines = text.lines().toList();
    for (int i = 0; i < lines.size(); i++) {
      String command = lines.get(i).strip();
      if (!command.isEmpty() && !command.startsWith("#")) {
        String id = "line-" + (i + 1);
        jobs.add(
            new PlanJob.Shell(
                id,
                command,
                tarball("line " + (i + 1), Optional.empty(), Optional.empty()),
                Optional.empty(),
                PlanJob.Retries.NONE));
      }
    }
    return new Plan(Plan.nameOf(file), parallelism(Optional.empty()), jobs);
  }

  private Plan yaml(String text) {
    JsonNode root;
    try {
      root = new ObjectMapper(new YAMLFactory()).readTree(text);
    } catch (JsonProcessingException e) {
      throw refusal("line " + e.getLocation().getLineNr() + ": " + e.getOriginalMessage());
    }
    if (root == null || !root.isObject()) {
      throw refusal("a plan is a mapping with jobs (and defaults)");
    }
    keys(root, TOP_KEYS, "the plan");
    JsonNode defaults = root.path("defaults");
    if (!defaults.isMissingNode()) {
      if (!defaults.isObject()) {
        throw refusal("defaults is a mapping");
      }
      keys(defaults, DEFAULT_KEYS, "defaults");
    }
    Optional<Path> defaultTarball = path(defaults, "tarball", "defaults");
    Optional<Duration> defaultTimeout = duration(defaults, "timeout", "defaults");
    PlanJob.Retries defaultRetries = retries(defaults, "defaults", PlanJob.Retries.NONE);
    Optional<String> defaultDist = string(defaults, "dist", "defaults");
    Optional<Integer> planParallelism = Optional.empty();
    if (defaults.has("jobs")) {
      JsonNode jobs = defaults.get("jobs");
      if (!jobs.canConvertToExactIntegral() || jobs.asInt() < 1) {
        throw refusal("defaults.jobs is a number of jobs, 1 or more");
      }
      planParallelism = Optional.of(jobs.asInt());
    }

    JsonNode jobsNode = root.path("jobs");
    if (!jobsNode.isArray() || jobsNode.isEmpty()) {
      throw refusal(
          "jobs is a list of jobs, each with an id and one of " + String.join(", ", KINDS));
    }
    List<PlanJob> jobs = new ArrayList<>();
    Set<String> ids = new TreeSet<>();
    for (int i = 0; i < jobsNode.size(); i++) {
      JsonNode node = jobsNode.get(i);
      String index = "jobs[" + i + "]";
      if (!node.isObject()) {
        throw refusal(index + " is a mapping with an id and one of " + String.join(", ", KINDS));
      }
      String id = string(node, "id", index).orElseThrow(() -> refusal(index + " has no id"));
      if (!ID.matcher(id).matches()) {
        throw refusal(
            index
                + ": the id '"
                + id
                + "' names a directory: letters, digits, '.', '_', '+' and '-', not starting with"
                + " '.', '_', '+' or '-'");
      }
      if (!ids.add(id)) {
        throw refusal(index + ": another job has the id " + id);
      }
      String where = index + " (" + id + ")";
      keys(node, JOB_KEYS, where);
      List<String> kinds = KINDS.stream().filter(node::has).toList();
      if (kinds.size() != 1) {
        throw refusal(
            where
                + ": a job has exactly one of "
                + String.join(", ", KINDS)
                + (kinds.isEmpty() ? "" : "; it has " + kinds));
      }
      String kind = kinds.get(0);
      String what = string(node, kind, where).orElseThrow();
      List<String> options = options(node, where);
      Path tarball = tarball(where, path(node, "tarball", where), defaultTarball);
      Optional<Duration> timeout = duration(node, "timeout", where).or(() -> defaultTimeout);
      PlanJob.Retries retries = retries(node, where, defaultRetries);
      if (node.has("dist") && !kind.equals("sbuild")) {
        throw refusal(where + ": dist is for sbuild jobs");
      }
      if (!options.isEmpty() && kind.equals("shell")) {
        throw refusal(
            where
                + ": options are for autopkgtest and sbuild jobs; a shell job's command says it all");
      }
      jobs.add(
          switch (kind) {
            case "autopkgtest" ->
                new PlanJob.Autopkgtest(
                    id, source(what, ".dsc", ".changes"), options, tarball, timeout, retries);
            case "sbuild" -> {
              String dist =
                  string(node, "dist", where)
                      .or(() -> defaultDist)
                      .orElseThrow(
                          () ->
                              refusal(
                                  where
                                      + ": an sbuild job needs a dist (or defaults.dist), such as"
                                      + " bookworm or unstable"));
              yield new PlanJob.Sbuild(
                  id, source(what, ".dsc"), dist, options, tarball, timeout, retries);
            }
            default -> new PlanJob.Shell(id, what, tarball, timeout, retries);
          });
    }
    return new Plan(Plan.nameOf(file), parallelism(planParallelism), jobs);
  }

  private int parallelism(Optional<Integer> plan) {
    return commandLine
        .parallelism()
        .or(() -> plan)
        .orElse(Runtime.getRuntime().availableProcessors());
  }

  /** The job's own, else the command line's, else the plan's default, else the one found. */
  private Path tarball(String where, Optional<Path> job, Optional<Path> planDefault) {
    return job.or(commandLine::tarball)
        .or(() -> planDefault)
        .or(commandLine::foundTarball)
        .orElseThrow(
            () ->
                refusal(
                    where
                        + ": no tarball: give the job a tarball, the plan defaults.tarball, or -t"));
  }

  /**
   * A path, as autopkgtest and sbuild tell it from a name: one ending in one of {@code suffixes} or
   * holding a slash, or an existing directory (a source tree); anything else is a package's name.
   */
  private String source(String value, String... suffixes) {
    boolean path = value.contains("/") || Files.isDirectory(dir.resolve(value));
    for (String suffix : suffixes) {
      path |= value.endsWith(suffix);
    }
    return path ? dir.resolve(value).normalize().toString() : value;
  }

  private void keys(JsonNode node, Set<String> known, String where) {
    for (Iterator<String> names = node.fieldNames(); names.hasNext(); ) {
      String name = names.next();
      if (!known.contains(name)) {
        throw refusal(
            where
                + ": unknown key '"
                + name
                + "'; known: "
                + String.join(", ", new TreeSet<>(known)));
      }
    }
  }

  private Optional<String> string(JsonNode node, String key, String where) {
    JsonNode value = node.get(key);
    if (value == null || value.isNull()) {
      return Optional.empty();
    }
    if (!value.isValueNode() || value.asText().isBlank()) {
      throw refusal(where + "." + key + " is a non-empty string");
    }
    return Optional.of(value.asText());
  }

  private Optional<Path> path(JsonNode node, String key, String where) {
    return string(node, key, where).map(value -> dir.resolve(value).normalize());
  }

  private Optional<Duration> duration(JsonNode node, String key, String where) {
    return string(node, key, where)
        .map(
            value -> {
              try {
                return Durations.parse(value);
              } catch (IllegalArgumentException e) {
                throw refusal(where + "." + key + ": " + e.getMessage());
              }
            });
  }

  private List<String> options(JsonNode node, String where) {
    JsonNode value = node.get("options");
    if (value == null || value.isNull()) {
      return List.of();
    }
    if (!value.isArray()) {
      throw refusal(where + ".options is a list of the runner's arguments, such as [-U]");
    }
    List<String> options = new ArrayList<>();
    for (JsonNode option : value) {
      if (!option.isValueNode()) {
        throw refusal(where + ".options holds strings only");
      }
      options.add(option.asText());
    }
    return options;
  }

  private PlanJob.Retries retries(JsonNode node, String where, PlanJob.Retries inherited) {
    JsonNode value = node.get("retries");
    if (value == null || value.isNull()) {
      return inherited;
    }
    String at = where + ".retries";
    if (!value.isObject()) {
      throw refusal(at + " is a mapping: {tmpfail: 2, backoff: 30s}");
    }
    keys(value, RETRY_KEYS, at);
    int tmpfail = inherited.tmpfail();
    if (value.has("tmpfail")) {
      JsonNode count = value.get("tmpfail");
      if (!count.canConvertToExactIntegral() || count.asInt() < 0) {
        throw refusal(at + ".tmpfail is a number of retries, 0 or more");
      }
      tmpfail = count.asInt();
    }
    Duration backoff = duration(value, "backoff", at).orElse(inherited.backoff());
    return new PlanJob.Retries(tmpfail, backoff);
  }
}
