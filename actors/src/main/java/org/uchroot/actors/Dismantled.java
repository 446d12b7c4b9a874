package org.uchroot.actors;

/** What {@link TestbedProvisioner#dismantle} leaves of a testbed. */
public enum Dismantled {
  /** Nothing: the testbed's directory was deleted on the way. */
  ROOTFS_REMOVED,
  /** The rootfs, or part of it, for the {@link RootfsRemover}. */
  ROOTFS_LEFT
}
