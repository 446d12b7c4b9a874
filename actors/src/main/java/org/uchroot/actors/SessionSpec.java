package org.uchroot.actors;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.Optional;

/**
 * What a testbed is made from.
 *
 * @param tarball the rootfs tarball, any compression GNU tar reads
 * @param binds host directories to bind into the testbed
 * @param unpackDir where to unpack; must not exist yet. Empty: a fresh temporary directory
 * @param unpackPrefix the path of that temporary directory but for its random end, such as {@code
 *     /tmp/uchroot.}. Empty: {@code uchroot.} in the JVM's temporary directory
 * @param normalUser the unprivileged account created in the testbed
 * @param grace how long this session's interrupted commands get before SIGTERM, then before the
 *     kill. Empty: the engine's
 * @param rootfsMode how this session's testbed is made. Empty: as the engine makes them
 */
public record SessionSpec(
    Path tarball,
    List<BindMount> binds,
    Optional<Path> unpackDir,
    Optional<String> unpackPrefix,
    String normalUser,
    Optional<GracePeriods> grace,
    Optional<RootfsMode> rootfsMode) {

  public SessionSpec {
    Objects.requireNonNull(tarball, "tarball");
    binds = List.copyOf(binds);
    Objects.requireNonNull(unpackDir, "unpackDir");
    Objects.requireNonNull(unpackPrefix, "unpackPrefix");
    Objects.requireNonNull(normalUser, "normalUser");
    Objects.requireNonNull(grace, "grace");
    Objects.requireNonNull(rootfsMode, "rootfsMode");
  }

  /** A session with the engine's grace periods and rootfs mode. */
  public SessionSpec(
      Path tarball,
      List<BindMount> binds,
      Optional<Path> unpackDir,
      Optional<String> unpackPrefix,
      String normalUser) {
    this(tarball, binds, unpackDir, unpackPrefix, normalUser, Optional.empty(), Optional.empty());
  }

  /** This spec with grace periods of its own. */
  public SessionSpec withGrace(GracePeriods own) {
    return new SessionSpec(
        tarball, binds, unpackDir, unpackPrefix, normalUser, Optional.of(own), rootfsMode);
  }

  /** This spec with a rootfs mode of its own. */
  public SessionSpec withRootfsMode(RootfsMode own) {
    return new SessionSpec(
        tarball, binds, unpackDir, unpackPrefix, normalUser, grace, Optional.of(own));
  }

  public static SessionSpec of(Path tarball) {
    return new SessionSpec(tarball, List.of(), Optional.empty(), Optional.empty(), "uchroot");
  }
}
