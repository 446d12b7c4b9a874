package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java program of docs/usage.md, taken from the page as it is: it compiles against the engine,
 * and run as its own JVM on a real tarball it prints the command's output and exits with its
 * status.
 */
@Tag("integration")
class UsageExampleTest {

  @TempDir Path dir;

  @Test
  void theDocumentedProgramCompilesAndRuns() throws Exception {
    String output = compileAndRun(System.getProperty("java.class.path"));
    assertFalse(output.contains("SLF4J"), output);
  }

  /** A program with no logging backend of its own hears nothing from SLF4J either. */
  @Test
  void aProgramWithoutALoggingBackendGetsNoWarnings() throws Exception {
    String withoutBackend =
        Arrays.stream(System.getProperty("java.class.path").split(":"))
            .filter(entry -> !entry.contains("logback"))
            .collect(Collectors.joining(":"));
    String output = compileAndRun(withoutBackend);
    assertEquals(List.of("hello"), output.lines().toList());
  }

  /** Compiles the program against {@code classpath} and runs it; returns stdout and stderr. */
  private String compileAndRun(String classpath) throws Exception {
    Path source = Files.writeString(dir.resolve("Hello.java"), documentedProgram());
    int compiled =
        ToolProvider.getSystemJavaCompiler()
            .run(null, null, null, "-d", dir.toString(), "-cp", classpath, source.toString());
    assertEquals(0, compiled, "the documented program does not compile");

    List<String> java = new ArrayList<>();
    java.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    // The helpers and configuration of this build, as the surefire run has them.
    for (String property :
        List.of(
            "uchroot.libexec.dir",
            "uchroot.conf.dir",
            "uchroot.cache-dir",
            "logback.configurationFile")) {
      if (System.getProperty(property) != null) {
        java.add("-D" + property + "=" + System.getProperty(property));
      }
    }
    java.addAll(List.of("-cp", dir + ":" + classpath, "Hello", BusyboxRootfs.tarball().toString()));
    Process process = new ProcessBuilder(java).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes());
    assertTrue(process.waitFor(120, TimeUnit.SECONDS), output);
    assertEquals(0, process.exitValue(), output);
    assertTrue(output.lines().anyMatch("hello"::equals), output);
    return output;
  }

  private static String documentedProgram() throws IOException {
    Path root = Path.of(System.getProperty("user.dir")).getParent();
    String page = Files.readString(root.resolve("docs/usage.md"));
    Matcher block = Pattern.compile("(?s)```java\\n(.*?)```").matcher(page);
    assertTrue(block.find(), "docs/usage.md has no Java program");
    return block.group(1);
  }
}
