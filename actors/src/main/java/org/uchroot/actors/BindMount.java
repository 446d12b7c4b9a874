package org.uchroot.actors;

import java.nio.file.Path;
import java.util.Objects;

/**
 * A host directory made visible inside the testbed, as {@code -b OUTSIDE INSIDE} asks. The owner of
 * the rules of a bind and of their words, which are the reference's.
 */
public record BindMount(Path outside, String inside) {

  /** Checked where the host is at hand: when the options are read, and again at every open. */
  public static String outsideMissing(Path outside) {
    return outside + " doesn't exist";
  }

  /**
   * @throws IllegalArgumentException if {@code inside} is not an absolute path
   */
  public BindMount {
    Objects.requireNonNull(outside, "outside");
    Objects.requireNonNull(inside, "inside");
    if (!inside.startsWith("/")) {
      throw new IllegalArgumentException(
          "mountpoint " + inside + " must be an absolute path inside the chroot");
    }
  }
}
