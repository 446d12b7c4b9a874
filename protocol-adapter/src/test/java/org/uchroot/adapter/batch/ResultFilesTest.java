package org.uchroot.adapter.batch;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

class ResultFilesTest {

  private static final List<JobResult> RESULTS =
      List.of(
          new JobResult(
              "hello-tests",
              PlanJob.Kind.autopkgtest,
              JobStatus.fail,
              OptionalInt.of(4),
              Duration.ofMillis(12_500),
              1,
              JobResult.TestVerdict.ofSummary(
                  "command1             PASS\nupstream             FAIL non-zero exit status 1\n"
                      + "needs-root           SKIP Test needs root\n"
                      // A setup command's text, as a testbed failure's summary quotes it.
                      + "\"sh -ec 'echo \"$1\"'\nfor retry in 1 2 3; do\n"),
              ""),
          new JobResult(
              "hello-build",
              PlanJob.Kind.sbuild,
              JobStatus.tmpfail,
              OptionalInt.of(1),
              Duration.ofSeconds(30),
              3,
              List.of(),
              ""),
          new JobResult(
              "smoke",
              PlanJob.Kind.shell,
              JobStatus.error,
              OptionalInt.empty(),
              Duration.ZERO,
              1,
              List.of(),
              "/srv/missing.tar: no such tarball"));

  @Test
  void resultsJsonHasEveryJobWithItsTests(@TempDir Path dir) throws Exception {
    ResultFiles.write(dir, "hello", RESULTS);
    JsonNode jobs = new ObjectMapper().readTree(dir.resolve("results.json").toFile()).get("jobs");
    assertEquals(3, jobs.size());
    JsonNode tests = jobs.get(0);
    assertEquals("autopkgtest", tests.get("kind").asText());
    assertEquals("fail", tests.get("status").asText());
    assertEquals(4, tests.get("exit_code").asInt());
    assertEquals(12.5, tests.get("duration_s").asDouble());
    assertEquals(1, tests.get("attempts").asInt());
    assertEquals("upstream", tests.get("tests").get(1).get("name").asText());
    assertEquals("FAIL", tests.get("tests").get(1).get("verdict").asText());
    assertEquals(3, jobs.get(1).get("attempts").asInt());
    assertEquals(true, jobs.get(2).get("exit_code").isNull());
    assertEquals("/srv/missing.tar: no such tarball", jobs.get(2).get("reason").asText());
  }

  @Test
  void junitTellsFailuresFromTmpfailsAndErrors(@TempDir Path dir) throws Exception {
    ResultFiles.write(dir, "hello", RESULTS);
    Document xml =
        DocumentBuilderFactory.newInstance()
            .newDocumentBuilder()
            .parse(new ByteArrayInputStream(Files.readAllBytes(dir.resolve("junit.xml"))));
    Element suite = xml.getDocumentElement();
    assertEquals("testsuite", suite.getTagName());
    assertEquals("hello", suite.getAttribute("name"));
    assertEquals("5", suite.getAttribute("tests"));
    assertEquals("1", suite.getAttribute("failures"));
    assertEquals("2", suite.getAttribute("errors"));
    assertEquals("1", suite.getAttribute("skipped"));
    NodeList cases = suite.getElementsByTagName("testcase");
    List<String> seen = new ArrayList<>();
    for (int i = 0; i < cases.getLength(); i++) {
      Element c = (Element) cases.item(i);
      Element outcome = (Element) c.getElementsByTagName("*").item(0);
      seen.add(
          c.getAttribute("classname")
              + " "
              + c.getAttribute("name")
              + " "
              + (outcome == null
                  ? "passed"
                  : outcome.getTagName() + ":" + outcome.getAttribute("type")));
    }
    assertEquals(
        List.of(
            "autopkgtest.hello-tests command1 passed",
            "autopkgtest.hello-tests upstream failure:fail",
            "autopkgtest.hello-tests needs-root skipped:",
            "sbuild.hello-build sbuild error:tmpfail",
            "shell.smoke shell error:error"),
        seen);
  }

  @Test
  void anEventIsOneLineOfJson() throws Exception {
    String line = ResultFiles.event("finished", RESULTS.get(2));
    assertEquals(1, line.lines().count());
    JsonNode event = new ObjectMapper().readTree(line.getBytes(StandardCharsets.UTF_8));
    assertEquals("finished", event.get("event").asText());
    assertEquals("smoke", event.get("id").asText());
  }
}
