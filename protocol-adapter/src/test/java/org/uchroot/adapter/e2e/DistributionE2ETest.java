package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What the build puts in the distribution, as the launch scripts use it. */
@Tag("e2e")
class DistributionE2ETest {

  /**
   * The class data archive saves a third of a second at every server's start; the JVM has crashed
   * while dumping it, which leaves the build green and every server slower.
   */
  @Test
  void theClassDataArchiveIsBuiltAndUsedWithoutAWord() throws Exception {
    Path archive = E2e.distributionDir().resolve("lib/uchroot.jsa");
    assertTrue(Files.isRegularFile(archive), archive + " was not built");
    assertHelpWithoutAWord(E2e.distributionDir());
  }

  /**
   * A copy of the distribution elsewhere cannot use the archive, made for the jars' first paths:
   * it starts without one, and says nothing of it on stderr, where an sbuild log would show it.
   */
  @Test
  void aCopiedDistributionStartsWithoutAWordToo(@TempDir Path dir) throws Exception {
    Path copy = dir.resolve("uchroot");
    Process cp =
        new ProcessBuilder("cp", "-a", E2e.distributionDir().toString(), copy.toString()).start();
    assertTrue(cp.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, cp.exitValue());
    assertHelpWithoutAWord(copy);
  }

  private static void assertHelpWithoutAWord(Path distribution) throws Exception {
    Process help =
        new ProcessBuilder(distribution.resolve("bin/autopkgtest-virt-uchroot").toString(), "-h")
            .start();
    help.getOutputStream().close();
    byte[] out = help.getInputStream().readAllBytes();
    String err = new String(help.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertTrue(help.waitFor(60, TimeUnit.SECONDS));
    assertEquals(0, help.exitValue());
    assertTrue(out.length > 0);
    assertEquals("", err, "the JVM said something on stderr");
  }
}
