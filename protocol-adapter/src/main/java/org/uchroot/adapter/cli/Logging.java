package org.uchroot.adapter.cli;

import ch.qos.logback.classic.Level;
import org.slf4j.LoggerFactory;

/** Log settings the command lines control. */
final class Logging {

  private Logging() {}

  /**
   * Starts logback on the calling thread, with {@code --debug} if asked: loggers first used on
   * several threads at once (the actor system's) would make SLF4J warn on stderr.
   */
  static void start(boolean debug) {
    if (debug) {
      enableDebug();
    }
    LoggerFactory.getILoggerFactory();
    if (debug) {
      // A slower start-up than usual is explained here, not on every run's stderr.
      LoggerFactory.getLogger(Logging.class)
          .debug("class data archive: {}", ClassDataArchive.ofThisJvm());
    }
  }

  /**
   * {@code --debug}: the property is read by {@code conf/logback.xml} when logback starts, which is
   * no earlier than the first logger, so call this first; the levels are set as well in case
   * logback had already started.
   */
  private static void enableDebug() {
    System.setProperty("uchroot.log.level", "DEBUG");
    if (LoggerFactory.getLogger("org.uchroot") instanceof ch.qos.logback.classic.Logger logger) {
      logger.setLevel(Level.DEBUG);
    }
  }
}
