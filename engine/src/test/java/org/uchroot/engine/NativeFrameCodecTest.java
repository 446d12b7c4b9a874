package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The C frame codec (frame.h), which the job server parses its clients' requests with, checked by
 * its harness built with AddressSanitizer and UndefinedBehaviorSanitizer.
 */
class NativeFrameCodecTest {

  @Test
  void theCodecPassesItsChecksUnderTheSanitizers() throws Exception {
    Path harness = EngineConfig.load().libexecDir().resolve("frame-test");
    assertTrue(Files.isExecutable(harness), harness + " was not built");
    Process process = new ProcessBuilder(harness.toString()).redirectErrorStream(true).start();
    String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(process.waitFor(60, TimeUnit.SECONDS), "the harness did not end");
    assertEquals(0, process.exitValue(), output);
    assertTrue(
        output.lines().count() >= 20 && output.lines().allMatch(l -> l.startsWith("ok ")), output);
  }
}
