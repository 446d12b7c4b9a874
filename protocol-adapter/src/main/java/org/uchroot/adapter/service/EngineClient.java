package org.uchroot.adapter.service;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;
import org.uchroot.actors.GracePeriods;
import org.uchroot.adapter.terminal.HostTerminal;
import org.uchroot.adapter.virt.SignalTarget;
import org.uchroot.engine.Engine;

/**
 * A frontend served by the shared engine, as its virtualisation server sees it: where the frontend
 * runs, its streams, and what the server tells it.
 */
public interface EngineClient {

  /** The engine every frontend of the user shares. */
  Engine engine();

  /** The frontend's working directory, which relative paths in its options are relative to. */
  Path workingDirectory();

  /** The frontend's environment, in place of the engine's. */
  Map<String, String> environment();

  /** The protocol lines the frontend's caller writes. */
  InputStream requests();

  /** Where the answers go, and nothing else. */
  OutputStream answers();

  /** The frontend's stderr. */
  PrintStream messages();

  /**
   * The terminal the frontend named (its controlling terminal for {@code shell}, or the one {@code
   * run}'s stdin and stdout are), in raw mode until closed; its resizes come as the frontend's
   * SIGWINCH. Empty where it named none.
   *
   * @throws IOException where it cannot be lent, with the reason
   */
  Optional<HostTerminal> lendTerminal() throws IOException;

  /** {@code -d}: this frontend's server logs at debug level, to the frontend's stderr. */
  void enableDebug();

  /**
   * What the frontend's signals go to, once it exists, and the grace periods its Ctrl+C escalates
   * by.
   */
  void serving(SignalTarget target, GracePeriods grace);

  /** This frontend needs a server of its own, for {@code reason}: it then starts one itself. */
  void runStandalone(String reason);
}
