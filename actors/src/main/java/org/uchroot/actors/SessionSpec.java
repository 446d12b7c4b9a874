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
 */
public record SessionSpec(
    Path tarball,
    List<BindMount> binds,
    Optional<Path> unpackDir,
    Optional<String> unpackPrefix,
    String normalUser,
    Optional<GracePeriods> grace) {

  public SessionSpec {
    Objects.requireNonNull(tarball, "tarball");
    binds = List.copyOf(binds);
    Objects.requireNonNull(unpackDir, "unpackDir");
    Objects.requireNonNull(unpackPrefix, "unpackPrefix");
    Objects.requireNonNull(normalUser, "normalUser");
    Objects.requireNonNull(grace, "grace");
  }

  /** A session with the engine's grace periods. */
  public SessionSpec(
      Path tarball,
      List<BindMount> binds,
      Optional<Path> unpackDir,
      Optional<String> unpackPrefix,
      String normalUser) {
    this(tarball, binds, unpackDir, unpackPrefix, normalUser, Optional.empty());
  }

  public static SessionSpec of(Path tarball) {
    return new SessionSpec(tarball, List.of(), Optional.empty(), Optional.empty(), "uchroot");
  }
}
