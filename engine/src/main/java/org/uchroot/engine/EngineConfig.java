package org.uchroot.engine;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Objects;
import org.uchroot.actors.GracePeriods;

/**
 * Settings of an {@link Engine}, read from {@code uchroot.conf}: the copy in the engine's jar, then
 * {@code $UCHROOT_CONF_DIR/uchroot.conf} or {@code -Duchroot.conf.dir}, then {@code -D} system
 * properties, the last winning.
 *
 * @param libexecDir where {@code uchroot-jobd} and {@code uchroot-exec} are
 * @param runtimeDir private directory (mode 0700) for the sessions' exec sockets
 * @param stateDir where sessions are recorded, so that those of a killed server can be cleaned up
 * @param cacheDir where unpacked tarballs are kept as read-only bases for overlay testbeds
 * @param rootfsMode an overlay over a cached base, or a full unpack per testbed
 * @param grace how long an interrupted command gets before SIGTERM, then before it is killed
 * @param normalUser the unprivileged account created in each testbed
 * @param privileged whether root's testbeds run with the host's ids rather than in a user
 *     namespace of their own (see docs/security.md)
 * @param config the whole configuration, Akka's part included
 */
public record EngineConfig(
    Path libexecDir,
    Path runtimeDir,
    Path stateDir,
    Path cacheDir,
    RootfsMode rootfsMode,
    GracePeriods grace,
    String normalUser,
    boolean privileged,
    Config config) {

  public EngineConfig {
    Objects.requireNonNull(libexecDir, "libexecDir");
    Objects.requireNonNull(runtimeDir, "runtimeDir");
    Objects.requireNonNull(stateDir, "stateDir");
    Objects.requireNonNull(cacheDir, "cacheDir");
    Objects.requireNonNull(rootfsMode, "rootfsMode");
    Objects.requireNonNull(grace, "grace");
    Objects.requireNonNull(normalUser, "normalUser");
    Objects.requireNonNull(config, "config");
  }

  /** Reads the configuration as described above. */
  public static EngineConfig load() {
    return from(loadConfig());
  }

  public static Config loadConfig() {
    Config base = ConfigFactory.parseResources("uchroot.conf");
    String dir = System.getProperty("uchroot.conf.dir", System.getenv("UCHROOT_CONF_DIR"));
    if (dir != null && Files.isRegularFile(Path.of(dir, "uchroot.conf"))) {
      base = ConfigFactory.parseFile(Path.of(dir, "uchroot.conf").toFile()).withFallback(base);
    }
    return ConfigFactory.systemProperties()
        .withFallback(base)
        .withFallback(ConfigFactory.defaultReference())
        .resolve();
  }

  public static EngineConfig from(Config config) {
    Config c = config.getConfig("uchroot");
    String libexec = System.getProperty("uchroot.libexec.dir", c.getString("libexec-dir"));
    if (libexec.isEmpty()) {
      throw new IllegalStateException(
          "uchroot.libexec-dir is not set: start uchroot through its launch scripts");
    }
    String runtime = c.getString("runtime-dir");
    String state = c.getString("state-dir");
    String cache = c.getString("cache-dir");
    return new EngineConfig(
        Path.of(libexec),
        runtime.isEmpty() ? Host.defaultRuntimeDir() : Path.of(runtime),
        state.isEmpty() ? Host.defaultStateDir() : Path.of(state),
        cache.isEmpty() ? Host.defaultCacheDir() : Path.of(cache),
        RootfsMode.parse(c.getString("rootfs-mode")),
        new GracePeriods(
            c.getDuration("interrupt.grace-before-term"),
            c.getDuration("interrupt.grace-before-kill")),
        c.getString("normal-user"),
        c.getBoolean("privileged"),
        config);
  }

  public EngineConfig withGrace(GracePeriods grace) {
    return new EngineConfig(
        libexecDir, runtimeDir, stateDir, cacheDir, rootfsMode, grace, normalUser, privileged,
        config);
  }

  public EngineConfig withRootfsMode(RootfsMode mode) {
    return new EngineConfig(
        libexecDir, runtimeDir, stateDir, cacheDir, mode, grace, normalUser, privileged, config);
  }

  public EngineConfig withPrivileged(boolean privileged) {
    return new EngineConfig(
        libexecDir, runtimeDir, stateDir, cacheDir, rootfsMode, grace, normalUser, privileged,
        config);
  }
}
