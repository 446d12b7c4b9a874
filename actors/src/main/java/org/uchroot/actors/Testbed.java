package org.uchroot.actors;

import java.nio.file.Path;
import java.util.Objects;

/**
 * A provisioned testbed.
 *
 * @param rootfs the host directory holding the testbed's files, removed when it ends
 * @param scratch the scratch directory as seen inside the testbed (protocol "downtmp")
 * @param sandbox the session's namespaces
 */
public record Testbed(Path rootfs, String scratch, Sandbox sandbox) {
  public Testbed {
    Objects.requireNonNull(rootfs, "rootfs");
    Objects.requireNonNull(scratch, "scratch");
    Objects.requireNonNull(sandbox, "sandbox");
  }
}
