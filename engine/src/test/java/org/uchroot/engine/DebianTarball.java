package org.uchroot.engine;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** The cached Debian buildd tarball made by the fixtures' make-debian-tarball.sh. */
final class DebianTarball {

  private static Path tarball;

  private DebianTarball() {}

  static synchronized Path path() throws IOException, InterruptedException {
    if (tarball == null) {
      Path script = BusyboxRootfs.fixture("make-debian-tarball.sh");
      Process p =
          new ProcessBuilder("bash", script.toString())
              .redirectError(ProcessBuilder.Redirect.INHERIT)
              .start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0 || out.isEmpty()) {
        throw new IllegalStateException("could not make the Debian tarball (see stderr)");
      }
      tarball = Path.of(out);
    }
    return tarball;
  }
}
