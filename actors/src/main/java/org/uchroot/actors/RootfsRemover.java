package org.uchroot.actors;

import java.util.concurrent.CompletionStage;

/**
 * Deletes a dismantled testbed's rootfs. Implementations never block the caller, never follow a
 * symlink, never cross into another filesystem, and delete nothing while anything is mounted at or
 * below the rootfs (the stage then fails, naming the mounts).
 */
public interface RootfsRemover {
  CompletionStage<Void> remove(Testbed testbed);
}
