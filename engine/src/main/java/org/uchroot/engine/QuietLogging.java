package org.uchroot.engine;

import java.util.ServiceLoader;
import org.slf4j.LoggerFactory;
import org.slf4j.spi.SLF4JServiceProvider;

/**
 * The engine logs through SLF4J and leaves the backend to the program that embeds it. A program
 * with none would get three warning lines on stderr from SLF4J, which for an embedded library only
 * say that nobody asked for its logs: then SLF4J's own no-op provider is chosen explicitly, and
 * quietly. A program with a provider, or that chose one itself, is left alone.
 */
final class QuietLogging {

  private static final String PROVIDER = "slf4j.provider";
  private static final String VERBOSITY = "slf4j.internal.verbosity";

  private QuietLogging() {}

  /** Call before the engine's first logger; idempotent. */
  static synchronized void ensureProvider() {
    if (System.getProperty(PROVIDER) != null
        || ServiceLoader.load(SLF4JServiceProvider.class, LoggerFactory.class.getClassLoader())
            .findFirst()
            .isPresent()) {
      return;
    }
    System.setProperty(PROVIDER, "org.slf4j.helpers.NOP_FallbackServiceProvider");
    if (System.getProperty(VERBOSITY) == null) {
      // Else SLF4J says, at its INFO level, that it loads the provider it was given.
      System.setProperty(VERBOSITY, "WARN");
    }
  }
}
