package org.uchroot.adapter;

import java.nio.file.Files;
import java.nio.file.Path;
import org.slf4j.LoggerFactory;
import org.uchroot.engine.EngineConfig;

/**
 * What the integration tests share: the engine's configuration, with the native programs the build
 * made (the build names their directory in {@code uchroot.libexec.dir}), and the exec client.
 */
public final class Fixtures {

  private Fixtures() {}

  public static EngineConfig engineConfig() {
    // Started here, before the actor system's threads log concurrently, which SLF4J warns about.
    LoggerFactory.getILoggerFactory();
    return EngineConfig.load();
  }

  /**
   * {@code uchroot-exec} built with AddressSanitizer and UndefinedBehaviorSanitizer: a memory error
   * or undefined behaviour in it ends it with a report on stderr and a failing status, which fails
   * the test that ran it.
   */
  public static Path execClient() {
    Path client = engineConfig().libexecDir().resolve("uchroot-exec-sanitized");
    if (!Files.isExecutable(client)) {
      throw new IllegalStateException(client + " is missing: build the engine module first");
    }
    return client;
  }
}
