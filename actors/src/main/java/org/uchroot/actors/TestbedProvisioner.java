package org.uchroot.actors;

import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * Makes the testbeds of sessions. Implementations never block the caller: they run their work (tar,
 * helper processes) on an executor of their own and complete the stage there. Whoever receives a
 * {@link Testbed} owns it until a {@link TestbedRemover} has taken it down.
 */
public interface TestbedProvisioner {

  /**
   * Unpacks the rootfs and creates the session's namespaces around it.
   *
   * @param previous on revert, the removed testbed this one replaces: its rootfs path and scratch
   *     path are made again, so that paths the client saw stay valid
   */
  CompletionStage<Testbed> provision(
      SessionId session, SessionSpec spec, Optional<Testbed> previous);
}
