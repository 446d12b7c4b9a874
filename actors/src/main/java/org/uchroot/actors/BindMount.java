package org.uchroot.actors;

import java.nio.file.Path;
import java.util.Objects;

/** A host directory made visible inside the testbed, as {@code -b OUTSIDE INSIDE} asks. */
public record BindMount(Path outside, String inside) {
  public BindMount {
    Objects.requireNonNull(outside, "outside");
    Objects.requireNonNull(inside, "inside");
    if (!inside.startsWith("/")) {
      throw new IllegalArgumentException(
          "mountpoint " + inside + " must be an absolute path inside the chroot");
    }
  }
}
