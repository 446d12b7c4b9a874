package org.uchroot.engine;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/** A tiny rootfs tarball made from Debian's busybox-static, built once per test run. */
public final class BusyboxRootfs {

  private static Path tarball;

  private BusyboxRootfs() {}

  public static synchronized Path tarball() throws IOException, InterruptedException {
    if (tarball == null) {
      Path dir = Files.createTempDirectory("uchroot-fixture.");
      dir.toFile().setReadable(true, false);
      dir.toFile().setExecutable(true, false);
      Path out = dir.resolve("busybox.tar");
      Path script = fixture("make-busybox-rootfs.sh");
      Process p = new ProcessBuilder("bash", script.toString(), out.toString()).inheritIO().start();
      if (!p.waitFor(60, TimeUnit.SECONDS) || p.exitValue() != 0) {
        throw new IllegalStateException("could not build the busybox rootfs");
      }
      out.toFile().setReadable(true, false);
      tarball = out;
      Runtime.getRuntime()
          .addShutdownHook(
              new Thread(
                  () -> {
                    try {
                      Files.deleteIfExists(out);
                      Files.deleteIfExists(dir);
                    } catch (IOException e) {
                      // Best effort: a temporary file.
                    }
                  }));
    }
    return tarball;
  }

  /** A script of the test fixtures, from the source tree. */
  static Path fixture(String name) {
    return Path.of(System.getProperty("uchroot.fixtures.dir", fixturesDir()), name);
  }

  private static String fixturesDir() {
    Path here = Path.of("src/test/resources/fixtures");
    if (Files.isDirectory(here)) {
      return here.toString();
    }
    return Path.of(
            System.getProperty("maven.multiModuleProjectDirectory", ".."),
            "engine/src/test/resources/fixtures")
        .toString();
  }
}
