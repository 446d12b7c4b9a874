package org.uchroot.adapter.cli;

import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.uchroot.actors.GracePeriods;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.adapter.terminal.HostTerminal;
import org.uchroot.adapter.virt.InterruptEscalation;
import org.uchroot.engine.Host;
import sun.misc.Signal;
import sun.misc.SignalHandler;

/**
 * The few signal dispositions the command lines need. Handlers run on the JVM's signal dispatcher
 * thread, one at a time.
 */
final class Signals {

  private static final Logger LOG = LoggerFactory.getLogger(Signals.class);

  private Signals() {}

  /** Runs {@code action} on each {@code SIGname}; a failure of it is logged in one line. */
  static void on(String name, Runnable action) {
    Signal.handle(
        new Signal(name),
        signal -> {
          try {
            action.run();
          } catch (RuntimeException e) {
            LOG.error("SIG{}: {}", name, OneLineMessage.of(e));
          }
        });
  }

  /**
   * Ctrl+C where uchroot itself receives it: the first runs {@code interrupt} (SIGINT to the
   * commands, SIGTERM and a kill after the grace periods) and says what comes next; another before
   * that escalation is over runs {@code kill}, which ends the commands at once. Each says on stderr
   * what it did, in the words its action returns.
   */
  static void onInterrupt(GracePeriods grace, Supplier<String> interrupt, Supplier<String> kill) {
    InterruptEscalation escalation = new InterruptEscalation(grace, interrupt, kill);
    on("INT", () -> LOG.info("{}", escalation.interrupted()));
  }

  /**
   * On SIGTERM or SIGHUP: the terminals lent to commands given back, {@code cleanUp}, then die of
   * that signal. A second signal during the cleanup ends the process at once, as in the reference.
   */
  static void onTermination(Runnable cleanUp) {
    for (String name : new String[] {"TERM", "HUP"}) {
      on(
          name,
          () -> {
            restoreDefaults("TERM", "HUP", "INT");
            HostTerminal.restoreAll();
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
