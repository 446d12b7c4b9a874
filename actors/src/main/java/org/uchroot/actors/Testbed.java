package org.uchroot.actors;

import java.nio.file.Path;
import java.util.Objects;

/**
 * A provisioned testbed.
 *
 * @param rootfs the host directory that is {@code /} inside
 * @param scratch the scratch directory as seen inside the testbed (protocol "downtmp")
 * @param sandbox the session's namespaces
 */
public record Testbed(Path rootfs, String scratch, Sandbox sandbox) {
  public Testbed {
    Objects.requireNonNull(rootfs, "rootfs");
    Objects.requireNonNull(scratch, "scratch");
    Objects.requireNonNull(sandbox, "sandbox");
  }

  /** The scratch directory as a host path. */
  public Path scratchOnHost() {
    return rootfs.resolve(scratch.substring(1));
  }
}
