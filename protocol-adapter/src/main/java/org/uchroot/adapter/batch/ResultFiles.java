package org.uchroot.adapter.batch;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalInt;
import javax.xml.stream.XMLOutputFactory;
import javax.xml.stream.XMLStreamException;
import javax.xml.stream.XMLStreamWriter;

/**
 * The files a batch leaves for CI systems in its results directory: {@code results.json} (one
 * object per job; docs/usage.md gives the schema) and {@code junit.xml} (a testcase per autopkgtest
 * test, per sbuild build and per shell job; a fail is a failure, a tmpfail an error). Each is
 * written whole to a temporary file, then renamed over the last one.
 */
public final class ResultFiles {

  public static final String JSON = "results.json";
  public static final String JUNIT = "junit.xml";

  private static final ObjectMapper MAPPER =
      new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
  private static final ObjectMapper LINE = new ObjectMapper();

  private ResultFiles() {}

  /** Writes both files for {@code results}, in the plan's order, into {@code dir}. */
  public static void write(Path dir, String planName, List<JobResult> results) throws IOException {
    replace(dir.resolve(JSON), json(results));
    replace(dir.resolve(JUNIT), junit(planName, results));
  }

  static String json(List<JobResult> results) throws IOException {
    ObjectNode root = MAPPER.createObjectNode();
    ArrayNode jobs = root.putArray("jobs");
    for (JobResult result : results) {
      put(jobs.addObject(), result);
    }
    return MAPPER.writeValueAsString(root) + "\n";
  }

  /** A job's result as one line of JSON, with {@code event} first: an event of --events jsonl. */
  static String event(String event, JobResult result) {
    return eventNode(event, result).toString();
  }

  /** A job's result with {@code event} first, to be written on one line. */
  static ObjectNode eventNode(String event, JobResult result) {
    ObjectNode line = LINE.createObjectNode().put("event", event);
    put(line, result);
    return line;
  }

  /** A job's result as {@link #put} wrote it. */
  static JobResult jobOf(JsonNode job) {
    List<JobResult.TestVerdict> tests = new ArrayList<>();
    job.path("tests")
        .forEach(
            test ->
                tests.add(
                    new JobResult.TestVerdict(
                        test.path("name").asText(), test.path("verdict").asText())));
    JsonNode exit = job.path("exit_code");
    return new JobResult(
        job.path("id").asText(),
        PlanJob.Kind.valueOf(job.path("kind").asText()),
        JobStatus.valueOf(job.path("status").asText()),
        exit.isInt() ? OptionalInt.of(exit.asInt()) : OptionalInt.empty(),
        Duration.ofMillis(Math.round(job.path("duration_s").asDouble() * 1000)),
        job.path("attempts").asInt(),
        tests,
        job.path("reason").asText(""));
  }

  /** A job's start as one line of JSON: an event of --events jsonl. */
  static String startedEvent(PlanJob job, int attempt) {
    ObjectNode line =
        LINE.createObjectNode()
            .put("event", "started")
            .put("id", job.id())
            .put("kind", job.kind().name())
            .put("attempt", attempt);
    return line.toString();
  }

  /** The fields of a job in results.json (docs/usage.md gives the schema). */
  private static void put(ObjectNode job, JobResult result) {
    job.put("id", result.id());
    job.put("kind", result.kind().name());
    job.put("status", result.status().name());
    if (result.exitCode().isPresent()) {
      job.put("exit_code", result.exitCode().getAsInt());
    } else {
      job.putNull("exit_code");
    }
    job.put("duration_s", result.duration().toMillis() / 1000.0);
    job.put("attempts", result.attempts());
    ArrayNode tests = job.putArray("tests");
    for (JobResult.TestVerdict test : result.tests()) {
      tests.addObject().put("name", test.name()).put("verdict", test.verdict());
    }
    if (!result.reason().isEmpty()) {
      job.put("reason", result.reason());
    }
  }

  static String junit(String planName, List<JobResult> results) throws IOException {
    StringWriter out = new StringWriter();
    try {
      XMLStreamWriter xml = XMLOutputFactory.newFactory().createXMLStreamWriter(out);
      xml.writeStartDocument("UTF-8", "1.0");
      out.write("\n");
      int tests = 0;
      int failures = 0;
      int errors = 0;
      int skipped = 0;
      for (JobResult result : results) {
        for (Case c : cases(result)) {
          tests++;
          switch (c.outcome()) {
            case "failure" -> failures++;
            case "error" -> errors++;
            case "skipped" -> skipped++;
            default -> {
              // Passed.
            }
          }
        }
      }
      xml.writeStartElement("testsuite");
      xml.writeAttribute("name", planName);
      xml.writeAttribute("tests", Integer.toString(tests));
      xml.writeAttribute("failures", Integer.toString(failures));
      xml.writeAttribute("errors", Integer.toString(errors));
      xml.writeAttribute("skipped", Integer.toString(skipped));
      for (JobResult result : results) {
        for (Case c : cases(result)) {
          out.write("\n  ");
          xml.writeStartElement("testcase");
          xml.writeAttribute("classname", result.kind().name() + "." + result.id());
          xml.writeAttribute("name", c.name());
          xml.writeAttribute("time", String.format(Locale.ROOT, "%.3f", c.seconds()));
          if (!c.outcome().equals("passed")) {
            xml.writeStartElement(c.outcome());
            if (!c.type().isEmpty()) {
              xml.writeAttribute("type", c.type());
            }
            xml.writeAttribute("message", c.message());
            xml.writeEndElement();
          }
          xml.writeEndElement();
        }
      }
      out.write("\n");
      xml.writeEndElement();
      xml.writeEndDocument();
      xml.close();
    } catch (XMLStreamException e) {
      throw new IOException("cannot write junit.xml: " + e.getMessage(), e);
    }
    return out + "\n";
  }

  /** One testcase: its name, outcome (passed, failure, error, skipped), type and message. */
  private record Case(String name, String outcome, String type, String message, double seconds) {}

  private static List<Case> cases(JobResult result) {
    double seconds = result.duration().toMillis() / 1000.0;
    String message =
        result.status().name() + (result.reason().isEmpty() ? "" : ": " + result.reason());
    Case whole =
        switch (result.status()) {
          case pass -> new Case(result.kind().name(), "passed", "", "", seconds);
          case neutral ->
              new Case(result.kind().name(), "skipped", "", "neutral: no tests", seconds);
          case fail -> new Case(result.kind().name(), "failure", "fail", message, seconds);
          default ->
              new Case(result.kind().name(), "error", result.status().name(), message, seconds);
        };
    if (result.tests().isEmpty()) {
      return List.of(whole);
    }
    // autopkgtest's own verdicts; the job's end stays its own case where no test says it.
    List<Case> cases =
        new ArrayList<>(
            result.tests().stream()
                .map(
                    test ->
                        switch (test.verdict()) {
                          case "PASS" -> new Case(test.name(), "passed", "", "", 0);
                          // FLAKY: failed, but the test may; autopkgtest still passes it.
                          case "SKIP", "FLAKY" ->
                              new Case(test.name(), "skipped", "", test.verdict(), 0);
                          case "FAIL" -> new Case(test.name(), "failure", "fail", "FAIL", 0);
                          default ->
                              new Case(test.name(), "error", test.verdict(), test.verdict(), 0);
                        })
                .toList());
    if (!result.status().passed() && result.status() != JobStatus.fail) {
      cases.add(whole);
    }
    return cases;
  }

  private static void replace(Path file, String content) throws IOException {
    Path partial = file.resolveSibling(file.getFileName() + ".partial");
    Files.writeString(partial, content, StandardCharsets.UTF_8);
    Files.move(partial, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
