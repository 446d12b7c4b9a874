package org.uchroot.adapter;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.slf4j.LoggerFactory;
import org.uchroot.engine.EngineConfig;

/** What the integration tests share: the engine's configuration and a native exec client. */
public final class Fixtures {

  private static Path execClient;

  private Fixtures() {}

  /**
   * The engine's configuration, with the engine's freshly built native programs when the build did
   * not say where they are (the engine module's tests get that from its pom).
   */
  public static EngineConfig engineConfig() {
    // Started here, before the actor system's threads log concurrently, which SLF4J warns about.
    LoggerFactory.getILoggerFactory();
    if (System.getProperty("uchroot.libexec.dir") == null) {
      System.setProperty(
          "uchroot.libexec.dir",
          moduleDir().resolve("../engine/target/native").normalize().toString());
    }
    return EngineConfig.load();
  }

  /** {@code uchroot-exec} compiled from this module's source, once per test run. */
  public static synchronized Path execClient() throws IOException, InterruptedException {
    if (execClient == null) {
      Path dir = Files.createTempDirectory("uchroot-exec-client.");
      Path out = dir.resolve("uchroot-exec");
      Process cc =
          new ProcessBuilder(
                  "cc",
                  "-O2",
                  "-Wall",
                  "-o",
                  out.toString(),
                  moduleDir().resolve("src/main/c/uchroot-exec.c").toString())
              .inheritIO()
              .start();
      if (!cc.waitFor(60, TimeUnit.SECONDS) || cc.exitValue() != 0) {
        throw new IllegalStateException("cannot compile uchroot-exec.c");
      }
      Runtime.getRuntime()
          .addShutdownHook(
              new Thread(
                  () -> {
                    try {
                      Files.deleteIfExists(out);
                      Files.deleteIfExists(dir);
                    } catch (IOException e) {
                      // A temporary file: best effort.
                    }
                  }));
      execClient = out;
    }
    return execClient;
  }

  /** Surefire runs in the module's directory; an IDE may run in the project's. */
  public static Path moduleDir() {
    Path here = Path.of("").toAbsolutePath();
    return Files.isDirectory(here.resolve("src/main/c")) ? here : here.resolve("protocol-adapter");
  }
}
