package org.uchroot.actors;

import java.util.Optional;
import java.util.concurrent.CompletionStage;

/**
 * Makes and dismantles the testbeds of sessions. Implementations never block the caller: they run
 * their work (tar, helper processes) on an executor of their own and complete the stage there.
 * Whoever receives a {@link Testbed} owns it until it has been dismantled and removed.
 */
public interface TestbedProvisioner {

  /**
   * Unpacks the rootfs and creates the session's namespaces around it.
   *
   * @param previous on revert, the dismantled and removed testbed this one replaces: its rootfs
   *     path and scratch path are made again, so that paths the client saw stay valid
   */
  CompletionStage<Testbed> provision(
      SessionId session, SessionSpec spec, Optional<Testbed> previous);

  /**
   * Ends the session's namespaces: everything still inside dies with its init. May delete the
   * testbed on the way, once nothing of it is mounted any more, and then completes at once, as
   * nothing of the testbed is left for the namespaces to hold. Otherwise completes once they are
   * gone, and whatever is left is the {@link RootfsRemover}'s, which refuses it while anything is
   * still mounted there.
   */
  CompletionStage<Dismantled> dismantle(Testbed testbed);
}
