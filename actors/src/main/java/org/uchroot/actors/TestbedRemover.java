package org.uchroot.actors;

import java.util.concurrent.CompletionStage;

/**
 * Takes a testbed down once nothing of its jobs holds it: ends the session's namespaces (whatever
 * is still inside dies with its init), deletes the rootfs and forgets the testbed. Implementations
 * never block the caller, never follow a symlink nor cross into another filesystem, and delete
 * nothing while anything is mounted at or below the rootfs. The stage completes once the testbed is
 * gone and forgotten, or fails with what is left.
 */
public interface TestbedRemover {
  CompletionStage<Void> remove(Testbed testbed);
}
