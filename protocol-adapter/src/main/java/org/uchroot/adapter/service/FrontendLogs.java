package org.uchroot.adapter.service;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.turbo.TurboFilter;
import ch.qos.logback.core.spi.FilterReply;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.LoggerFactory;
import org.slf4j.MDC;
import org.slf4j.Marker;

/**
 * The shared engine's log lines go to the stderr of the frontend they are about, which is what
 * sbuild keeps in a build's log, as a server of its own would write them; the others go to the
 * engine's log. A line is about a frontend when the thread logging it serves that frontend, or acts
 * for a session one of its threads opened. {@code -d} of a frontend turns on debug lines of that
 * frontend alone.
 *
 * <p>The console appender writes to whatever {@link System#err} is at each line, so the engine's
 * stderr is replaced by a stream that picks the destination per line.
 */
final class FrontendLogs {

  /** The MDC key naming the frontend a thread serves. */
  static final String FRONTEND = "frontend";

  /** The MDC key the engine's own code sets on behalf of a session. */
  private static final String SESSION = "session";

  private static final Map<String, Frontend> FRONTENDS = new ConcurrentHashMap<>();
  private static final Map<String, String> FRONTEND_OF_SESSION = new ConcurrentHashMap<>();

  private FrontendLogs() {}

  private static final class Frontend {
    final OutputStream stderr;
    volatile boolean debug;

    Frontend(OutputStream stderr) {
      this.stderr = stderr;
    }
  }

  /** Routes this process's log lines from now on; the rest go to {@code engineLog}. */
  static void install(PrintStream engineLog) {
    System.setErr(new PrintStream(new Dispatcher(engineLog), true, StandardCharsets.UTF_8));
    if (LoggerFactory.getILoggerFactory() instanceof LoggerContext context) {
      context.addTurboFilter(new DebugOfFrontend());
    }
  }

  static void register(String frontend, OutputStream stderr) {
    FRONTENDS.put(frontend, new Frontend(stderr));
  }

  static void enableDebug(String frontend) {
    Frontend known = FRONTENDS.get(frontend);
    if (known != null) {
      known.debug = true;
    }
  }

  static void unregister(String frontend) {
    FRONTENDS.remove(frontend);
    FRONTEND_OF_SESSION.values().removeIf(frontend::equals);
  }

  /** The frontend the calling thread's log line is about, or null. */
  private static Frontend current() {
    String frontend = MDC.get(FRONTEND);
    String session = MDC.get(SESSION);
    if (frontend != null) {
      if (session != null) {
        FRONTEND_OF_SESSION.put(session, frontend);
      }
      return FRONTENDS.get(frontend);
    }
    if (session == null) {
      return null;
    }
    String owner = FRONTEND_OF_SESSION.get(session);
    return owner == null ? null : FRONTENDS.get(owner);
  }

  /** One log line at a time, to its frontend or to the engine's log. */
  private static final class Dispatcher extends OutputStream {
    private final PrintStream engineLog;

    Dispatcher(PrintStream engineLog) {
      this.engineLog = engineLog;
    }

    @Override
    public void write(int b) throws IOException {
      write(new byte[] {(byte) b}, 0, 1);
    }

    @Override
    public void write(byte[] data, int offset, int length) throws IOException {
      Frontend frontend = current();
      if (frontend != null) {
        frontend.stderr.write(data, offset, length);
      } else {
        engineLog.write(data, offset, length);
      }
    }

    @Override
    public void flush() {
      engineLog.flush();
    }
  }

  /** Debug lines of uchroot's loggers for the frontends that asked for them with {@code -d}. */
  private static final class DebugOfFrontend extends TurboFilter {
    @Override
    public FilterReply decide(
        Marker marker, Logger logger, Level level, String format, Object[] params, Throwable t) {
      if (level == null || level.isGreaterOrEqual(Level.INFO)) {
        return FilterReply.NEUTRAL;
      }
      Frontend frontend = current();
      return frontend != null && frontend.debug && logger.getName().startsWith("org.uchroot")
          ? FilterReply.ACCEPT
          : FilterReply.NEUTRAL;
    }
  }
}
