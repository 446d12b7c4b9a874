package org.uchroot.adapter.batch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * The batch's state, appended to {@code DIR/journal.jsonl} as it goes and flushed line by line, so
 * that a batch killed at any point can be resumed: a line for each batch run (its pid), and one as
 * each job starts and ends, with a digest of the job's inputs (its line in the plan, the files it
 * names, the tarball). A last line cut short by a kill is skipped on reading.
 */
public final class Journal implements Batch.Listener, AutoCloseable {

  public static final String FILE = "journal.jsonl";

  private static final ObjectMapper JSON = new ObjectMapper();

  private final OutputStream out;

  private Journal(OutputStream out) {
    this.out = out;
  }

  /** Appends to the journal in {@code dir}, starting with this batch run's line. */
  public static Journal append(Path dir, long pid) throws IOException {
    Path file = dir.resolve(FILE);
    // A line that a kill cut short ends here, so that this run's lines stay whole.
    boolean cut = Files.isRegularFile(file) && Files.size(file) > 0 && !endsWithNewline(file);
    Journal journal =
        new Journal(
            Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND));
    if (cut) {
      journal.out.write('\n');
    }
    journal.write(JSON.createObjectNode().put("event", "batch").put("pid", pid).toString());
    return journal;
  }

  private static boolean endsWithNewline(Path file) throws IOException {
    try (var channel = java.nio.channels.FileChannel.open(file)) {
      java.nio.ByteBuffer last = java.nio.ByteBuffer.allocate(1);
      channel.read(last, channel.size() - 1);
      return last.get(0) == '\n';
    }
  }

  /** What a journal says: the batch runs' pids, and each job's last end with its inputs. */
  public record State(List<Long> pids, Map<String, Finished> finished) {}

  /** A job's last end, and the digest of the inputs it ran with. */
  public record Finished(JobResult result, String inputs) {}

  /** Reads the journal in {@code dir}; empty if there is none. */
  public static Optional<State> read(Path dir) throws IOException {
    Path file = dir.resolve(FILE);
    if (!Files.isRegularFile(file)) {
      return Optional.empty();
    }
    List<Long> pids = new ArrayList<>();
    Map<String, Finished> finished = new HashMap<>();
    for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
      JsonNode event;
      try {
        event = JSON.readTree(line);
      } catch (IOException e) {
        continue;
      }
      if (event == null || !event.isObject()) {
        continue;
      }
      switch (event.path("event").asText()) {
        case "batch" -> pids.add(event.path("pid").asLong());
        case "finished" ->
            finished.put(
                event.path("id").asText(),
                new Finished(ResultFiles.jobOf(event), event.path("inputs").asText()));
        default -> {
          // Starts: what was running when a batch was killed ran again anyway.
        }
      }
    }
    return Optional.of(new State(pids, finished));
  }

  @Override
  public void started(PlanJob job, int attempt) {
    write(
        JSON.createObjectNode()
            .put("event", "started")
            .put("id", job.id())
            .put("attempt", attempt)
            .toString());
  }

  @Override
  public void finished(PlanJob job, JobResult result) {
    write(ResultFiles.eventNode("finished", result).put("inputs", inputs(job)).toString());
  }

  private synchronized void write(String line) {
    try {
      out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
      out.flush();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Override
  public void close() throws IOException {
    out.close();
  }

  /**
   * The digest of what a job runs with: the job as the plan gives it, and the size and time of the
   * files it names (a rebuilt .dsc, a new tarball), so that --resume runs it again when one
   * changed.
   */
  public static String inputs(PlanJob job) {
    StringBuilder text = new StringBuilder(job.toString());
    for (Path file : Stream.concat(job.localSource().stream(), Stream.of(job.tarball())).toList()) {
      try {
        text.append('\n')
            .append(file)
            .append(' ')
            .append(Files.size(file))
            .append(' ')
            .append(Files.getLastModifiedTime(file).toMillis());
      } catch (IOException e) {
        text.append('\n').append(file).append(" missing");
      }
    }
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      return HexFormat.of().formatHex(sha.digest(text.toString().getBytes(StandardCharsets.UTF_8)));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
