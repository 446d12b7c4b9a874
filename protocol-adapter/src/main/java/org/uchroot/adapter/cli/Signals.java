package org.uchroot.adapter.cli;

import org.slf4j.LoggerFactory;
import org.uchroot.engine.Host;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * The few signal dispositions the command lines need. Handlers run on the JVM's signal dispatcher
 * thread, one at a time.
 */
final class Signals {

  private Signals() {}

  /** Runs {@code action} on each {@code SIGname}; a failure of it is logged in one line. */
  static void on(String name, Runnable action) {
    Signal.handle(
        new Signal(name),
        signal -> {
          try {
            action.run();
          } catch (RuntimeException e) {
            LoggerFactory.getLogger(Signals.class).error("SIG{}: {}", name, Main.message(e));
          }
        });
  }

  /**
   * On SIGTERM or SIGHUP: {@code cleanUp}, then die of that signal. A second signal during the
   * cleanup ends the process at once, as in the reference.
   */
  static void onTermination(Runnable cleanUp) {
    for (String name : new String[] {"TERM", "HUP"}) {
      on(
          name,
          () -> {
            restoreDefaults("TERM", "HUP", "INT");
            cleanUp.run();
            dieBy(name);
          });
    }
  }

  /** From now on these signals kill the process at once, as they would any program. */
  private static void restoreDefaults(String... names) {
    for (String name : names) {
      Signal.handle(new Signal(name), SignalHandler.SIG_DFL);
    }
  }

  /**
   * Ends the process by {@code name}, so that the parent sees the death by signal it asked for;
   * falls back to the status a shell would show for it.
   */
  private static void dieBy(String name) {
    Signal signal = new Signal(name);
    Signal.handle(signal, SignalHandler.SIG_DFL);
    Host.kill(ProcessHandle.current().pid(), signal.getNumber());
    try {
      Thread.sleep(5000);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
    Runtime.getRuntime().halt(128 + signal.getNumber());
  }
}
