package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.engine.LeakCheck;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

/**
 * {@code uchroot batch} on a plan of real archive packages, as a new user writes one: autopkgtest
 * and sbuild run as they are against the batch's one engine, mixed with shell jobs, a job whose
 * .dsc is missing, a package whose test fails, and one whose testbed cannot reach its apt source.
 * The autopkgtest verdicts are those autopkgtest-virt-unshare gave (realpkg/reference),
 * results.json follows docs/batch-results.schema.json, and junit.xml parses.
 */
@Tag("e2e")
class BatchE2ETest {

  private static final Duration LIMIT = Duration.ofMinutes(30);

  @RegisterExtension final LeakCheck leaks = new LeakCheck();

  @TempDir Path tempDir;

  @Test
  void aPlanOfRealPackagesGivesEachJobItsVerdictAndLeavesNothing() throws Exception {
    E2e.requireRoot();
    E2e.requireCommands("autopkgtest", "sbuild", "python3");
    RealPackageE2ETest.Package runlim = realPackage("runlim");
    RealPackageE2ETest.Package libcap2 = realPackage("libcap2");
    Path runlimDsc = RealPackageE2ETest.fetchSource(runlim);
    Path libcap2Dsc = RealPackageE2ETest.fetchSource(libcap2);

    Path work = Files.createDirectories(tempDir.resolve("work"));
    Path tmp = Files.createDirectories(work.resolve("tmp"));
    leaks.watch(tmp);
    Map<String, String> env = leaks.tag(E2e.childEnvironment(tmp));
    String testbed = "--no-built-binaries";
    E2e.write(
        work.resolve("plan.yaml"),
        String.join(
            "\n",
            "defaults: {tarball: " + E2e.debianTarball() + ", jobs: 3,",
            "           retries: {tmpfail: 1, backoff: 1s}}",
            "jobs:",
            "  - {id: runlim-tests, autopkgtest: " + runlimDsc + ",",
            "     options: [" + testbed + ", --apt-upgrade]}",
            "  - {id: libcap2-tests, autopkgtest: " + libcap2Dsc + ",",
            "     options: [" + testbed + ", --apt-upgrade]}",
            "  - {id: runlim-build, sbuild: " + runlimDsc + ", dist: bookworm}",
            "  - {id: smoke, shell: 'test -x /usr/bin/apt-get && echo smoke-ok'}",
            "  - {id: failing, shell: 'echo about to fail; exit 3'}",
            "  - {id: missing, autopkgtest: missing_1.0.dsc}",
            "  - id: no-archive",
            "    autopkgtest: " + runlimDsc,
            // An apt source without a Release file: apt's update fails, and so the testbed.
            "    options: ["
                + testbed
                + ", '--add-apt-source=deb file:/nonexistent bookworm main', --apt-upgrade]",
            ""));

    E2e.Result batch =
        E2e.run(
            "batch-plan",
            null,
            work,
            env,
            LIMIT,
            List.of(
                E2e.distributionDir().resolve("bin/uchroot").toString(),
                "batch",
                "plan.yaml",
                "--events",
                "jsonl"));
    assertEquals(1, batch.exitCode, "a job failed: status 1\n" + batch.describe());

    Path results = work.resolve("uchroot-results/plan");
    E2e.Result schema =
        E2e.run(
            "batch-schema",
            null,
            work,
            Map.of(),
            Duration.ofMinutes(1),
            List.of(
                "/usr/bin/python3",
                "-c",
                "import json, sys, jsonschema; jsonschema.validate(json.load(open(sys.argv[1])),"
                    + " json.load(open(sys.argv[2]))); print('valid')",
                results.resolve("results.json").toString(),
                E2e.projectRoot().resolve("docs/batch-results.schema.json").toString()));
    assertEquals(0, schema.exitCode, schema.describe());

    JsonNode jobs =
        new ObjectMapper().readTree(results.resolve("results.json").toFile()).get("jobs");
    Map<String, JsonNode> byId = new LinkedHashMap<>();
    jobs.forEach(job -> byId.put(job.get("id").asText(), job));
    assertEquals(
        List.of(
            "runlim-tests",
            "libcap2-tests",
            "runlim-build",
            "smoke",
            "failing",
            "missing",
            "no-archive"),
        new ArrayList<>(byId.keySet()));
    Map<String, String> statuses = new LinkedHashMap<>();
    byId.forEach((id, job) -> statuses.put(id, job.get("status").asText()));
    assertEquals(
        Map.of(
            "runlim-tests", "pass",
            "libcap2-tests", "fail",
            "runlim-build", "pass",
            "smoke", "pass",
            "failing", "fail",
            "missing", "error",
            "no-archive", "tmpfail"),
        statuses,
        batch.describe());
    assertEquals(verdicts(runlim), testsOf(byId.get("runlim-tests")));
    assertEquals(verdicts(libcap2), testsOf(byId.get("libcap2-tests")));
    assertEquals(2, byId.get("no-archive").get("attempts").asInt(), "a tmpfail is tried again");
    assertEquals(3, byId.get("failing").get("exit_code").asInt());
    assertTrue(
        byId.get("missing").get("reason").asText().endsWith("missing_1.0.dsc: no such file"),
        byId.get("missing").toString());

    // Each job's own files.
    assertTrue(Files.readString(results.resolve("smoke/log")).contains("smoke-ok"));
    assertEquals("3\n", Files.readString(results.resolve("failing/exitcode")));
    assertTrue(Files.isRegularFile(results.resolve("runlim-tests/summary")));
    assertTrue(Files.isRegularFile(results.resolve("runlim-tests/duration")));
    assertTrue(
        Files.readString(results.resolve("runlim-build/log")).contains("Status: successful"));
    try (var debs = Files.list(results.resolve("runlim-build/artifacts"))) {
      assertTrue(
          debs.anyMatch(p -> p.getFileName().toString().matches("runlim_1\\.10-6_.*\\.deb")),
          "sbuild's .deb is in the job's artifacts");
    }
    assertTrue(Files.isDirectory(results.resolve("no-archive/attempt-1")));

    // junit.xml: one testcase per autopkgtest test, per build, per shell job.
    var xml =
        DocumentBuilderFactory.newInstance()
            .newDocumentBuilder()
            .parse(new ByteArrayInputStream(Files.readAllBytes(results.resolve("junit.xml"))));
    NodeList cases = xml.getDocumentElement().getElementsByTagName("testcase");
    List<String> failures = new ArrayList<>();
    for (int i = 0; i < cases.getLength(); i++) {
      Element c = (Element) cases.item(i);
      if (c.getElementsByTagName("failure").getLength() > 0) {
        failures.add(c.getAttribute("classname") + " " + c.getAttribute("name"));
      }
    }
    assertEquals(
        List.of("autopkgtest.libcap2-tests upstream-root", "shell.failing shell"), failures);

    // Progress on stderr, events on stdout, the summary at the end.
    assertTrue(batch.output.contains("{\"event\":\"finished\",\"id\":\"smoke\""), batch.describe());
    assertTrue(
        batch.output.matches("(?s).*\\d\\d:\\d\\d:\\d\\d started runlim-build \\(sbuild\\).*"));
    assertTrue(batch.output.contains("results: " + results.resolve("results.json")));
    assertServedFromTheAptCache(batch);
  }

  @Test
  void anUnprivilegedUsersBatchRunsAutopkgtestThroughItsOwnAptCache() throws Exception {
    E2e.requireRoot();
    E2e.requireCommands("autopkgtest", "squid");
    String user = E2e.testUser();
    Path runlimDsc = RealPackageE2ETest.fetchSource(realPackage("runlim"));
    Path work = newUsersWorkDir();
    Path home = work.resolve("home");
    // Two shell jobs one after the other: the second has the indices the first fetched.
    E2e.write(
        work.resolve("plan.yaml"),
        String.join(
            "\n",
            "defaults: {tarball: " + E2e.debianTarball() + ", jobs: 2}",
            "jobs:",
            "  - {id: runlim-tests, autopkgtest: " + runlimDsc + ",",
            "     options: [--no-built-binaries, --apt-upgrade]}",
            "  - {id: first, shell: 'apt-get -q update && apt-get -q -y install hello && hello'}",
            "  - {id: second, shell: 'apt-get -q update && apt-get -q -y install hello && hello'}",
            ""));
    Map<String, String> env = newUsersEnvironment(work, user);

    E2e.Result batch =
        E2e.run(
            "batch-unprivileged",
            user,
            work,
            env,
            LIMIT,
            List.of(E2e.distributionDir().resolve("bin/uchroot").toString(), "batch", "plan.yaml"));
    assertEquals(0, batch.exitCode, batch.describe());
    Path results = work.resolve("uchroot-results/plan");
    assertEquals(
        verdicts(realPackage("runlim")),
        testsOf(
            new ObjectMapper()
                .readTree(results.resolve("results.json").toFile())
                .get("jobs")
                .get(0)));
    assertTrue(
        batch.output.contains("keeping what it fetches in " + home.resolve(".cache/uchroot-apt")));
    assertTrue(Files.readString(results.resolve("second/log")).contains("Hello, world!"));
    assertServedFromTheAptCache(batch);
    // The cache is the user's, and stopped with the batch.
    assertEquals(user, Files.getOwner(home.resolve(".cache/uchroot-apt/cache")).getName());
    assertTrue(
        ProcessHandle.allProcesses()
            .noneMatch(p -> p.info().commandLine().orElse("").contains("uchrootapt")),
        "squid outlived the batch");
  }

  @Test
  void theUsagePagesPlanRunsAsWrittenForANewUser() throws Exception {
    E2e.requireRoot();
    E2e.requireCommands("autopkgtest", "sbuild", "apt-get");
    String usage = Files.readString(E2e.projectRoot().resolve("docs/usage.md"));
    Matcher plan =
        Pattern.compile("The plan is YAML:\n\n```yaml\n([^`]*)```\n\n```sh\n([^`]*)```")
            .matcher(usage);
    assertTrue(plan.find(), "docs/usage.md has no batch plan and command");
    String user = E2e.testUser();
    Path work = newUsersWorkDir();
    // What the plan names: hello's source as the page's version has it, and two tarballs.
    E2e.Result fetched =
        E2e.run(
            "usage-apt-get-source",
            null,
            work,
            Map.of(),
            LIMIT,
            List.of("apt-get", "source", "-q", "--download-only", "hello=2.10-3"));
    assertEquals(0, fetched.exitCode, fetched.describe());
    Files.createSymbolicLink(work.resolve("bookworm.tar"), E2e.debianTarball());
    Files.createSymbolicLink(work.resolve("buildd.tar"), E2e.debianTarball());
    E2e.write(work.resolve("plan.yaml"), plan.group(1));
    Map<String, String> env = newUsersEnvironment(work, user);

    E2e.Result batch =
        E2e.run("usage-batch", user, work, env, LIMIT, List.of("sh", "-c", plan.group(2).strip()));
    assertEquals(0, batch.exitCode, batch.describe());
    JsonNode jobs =
        new ObjectMapper()
            .readTree(work.resolve("uchroot-results/plan/results.json").toFile())
            .get("jobs");
    List<String> seen = new ArrayList<>();
    jobs.forEach(job -> seen.add(job.get("id").asText() + " " + job.get("status").asText()));
    assertEquals(List.of("hello-tests pass", "hello-build pass", "smoke pass"), seen);
  }

  @Test
  void reverseDependsPlansWhatATestNamesAndItsJobsRunBySourceName() throws Exception {
    E2e.requireRoot();
    E2e.requireCommands("autopkgtest");
    Path work = Files.createDirectories(tempDir.resolve("work"));
    Path tmp = Files.createDirectories(work.resolve("tmp"));
    leaks.watch(tmp);
    Map<String, String> env = leaks.tag(E2e.childEnvironment(tmp));
    String uchroot = E2e.distributionDir().resolve("bin/uchroot").toString();
    // runlim's tests name stress in Testsuite-Triggers, as apt in the plain tarball sees it.
    E2e.Result planned =
        E2e.run(
            "reverse-depends-stress",
            null,
            work,
            env,
            LIMIT,
            List.of(
                uchroot,
                "batch",
                "--reverse-depends",
                "stress",
                "-t",
                E2e.debianTarball().toString(),
                "--write-plan",
                "stress.yaml"));
    assertEquals(0, planned.exitCode, planned.describe());
    ObjectMapper yaml = new ObjectMapper(new YAMLFactory());
    JsonNode plan = yaml.readTree(work.resolve("stress.yaml").toFile());
    List<String> ids = new ArrayList<>();
    plan.get("jobs").forEach(job -> ids.add(job.get("id").asText()));
    assertTrue(ids.contains("runlim"), ids.toString());
    assertTrue(planned.output.contains("autopkgtest job(s) in stress.yaml"), planned.describe());

    // The plan as written, cut to runlim's job: fetched by name in its testbed, and tested.
    ArrayNode kept = yaml.createArrayNode();
    plan.get("jobs")
        .forEach(
            job -> {
              if (job.get("id").asText().equals("runlim")) {
                kept.add(job);
              }
            });
    ((ObjectNode) plan).set("jobs", kept);
    yaml.writeValue(work.resolve("runlim.yaml").toFile(), plan);
    E2e.Result ran =
        E2e.run(
            "reverse-depends-run",
            null,
            work,
            env,
            LIMIT,
            List.of(uchroot, "batch", "runlim.yaml"));
    assertEquals(0, ran.exitCode, ran.describe());
    JsonNode job =
        new ObjectMapper()
            .readTree(work.resolve("uchroot-results/runlim/results.json").toFile())
            .get("jobs")
            .get(0);
    assertEquals(verdicts(realPackage("runlim")), testsOf(job));
  }

  /**
   * A work directory for a new user, whom the (root-owned) temporary directory only lets through:
   * {@code home}, {@code tmp} and a private runtime directory {@code run}.
   */
  private Path newUsersWorkDir() throws IOException {
    Files.setPosixFilePermissions(tempDir, PosixFilePermissions.fromString("rwx--x--x"));
    Path work = tempDir.resolve("work");
    Files.createDirectories(work.resolve("home"));
    Files.createDirectories(work.resolve("tmp"));
    Path runtimeDir = Files.createDirectories(work.resolve("run"));
    Files.setPosixFilePermissions(runtimeDir, PosixFilePermissions.fromString("rwx------"));
    return work;
  }

  /**
   * Gives {@code work}, as it now is, to {@code user}; their environment, with its fresh HOME and
   * caches there (runuser keeps root's environment otherwise).
   */
  private Map<String, String> newUsersEnvironment(Path work, String user) throws IOException {
    E2e.chownTree(work, user);
    Path home = work.resolve("home");
    leaks.watch(work.resolve("tmp"));
    Map<String, String> env = leaks.tag(E2e.childEnvironment(work.resolve("tmp")));
    env.put("HOME", home.toString());
    env.put("USER", user);
    env.put("LOGNAME", user);
    env.put("UCHROOT_RUNTIME_DIR", work.resolve("run").toString());
    env.put("XDG_CACHE_HOME", home.resolve(".cache").toString());
    return env;
  }

  /** The testbeds' apt went through the batch's cache, and a job had from it what one fetched. */
  private static void assertServedFromTheAptCache(E2e.Result batch) {
    assertTrue(batch.output.contains("apt cache: squid on http://127.0.0.1:"), batch.describe());
    Matcher traffic =
        Pattern.compile("apt cache: ([0-9.]+) MB fetched, ([0-9.]+) MB from the cache")
            .matcher(batch.output);
    assertTrue(traffic.find(), batch.describe());
    assertTrue(Double.parseDouble(traffic.group(2)) > 1.0, traffic.group());
  }

  private static RealPackageE2ETest.Package realPackage(String name) throws IOException {
    return RealPackageE2ETest.packages().stream()
        .filter(p -> p.name().equals(name))
        .findFirst()
        .orElseThrow(() -> new AssertionError(name + " is not in realpkg/packages.tsv"));
  }

  private static Map<String, String> verdicts(RealPackageE2ETest.Package p) throws IOException {
    return RealPackageE2ETest.reference(p).verdicts();
  }

  private static Map<String, String> testsOf(JsonNode job) {
    Map<String, String> tests = new LinkedHashMap<>();
    job.get("tests").forEach(t -> tests.put(t.get("name").asText(), t.get("verdict").asText()));
    return tests;
  }
}
