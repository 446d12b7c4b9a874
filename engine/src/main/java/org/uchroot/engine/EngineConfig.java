package org.uchroot.engine;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalLong;
import org.uchroot.actors.GracePeriods;
import org.uchroot.actors.RootfsMode;

/**
 * Settings of an {@link Engine}, read from {@code uchroot.conf} (HOCON): the defaults in the
 * engine's jar, then the system's file ({@code /etc/uchroot/uchroot.conf}, or in the directory
 * {@code $UCHROOT_CONF_DIR}, or {@code -Duchroot.conf.dir}), then the user's ({@code
 * $XDG_CONFIG_HOME/uchroot/uchroot.conf}, else {@code ~/.config/uchroot/uchroot.conf}), then {@code
 * -D} system properties, the last winning.
 *
 * @param libexecDir where {@code uchroot-jobd} and {@code uchroot-exec} are
 * @param runtimeDir private directory (mode 0700) for the sessions' exec sockets
 * @param stateDir where sessions are recorded, so that those of a killed server can be cleaned up
 * @param cacheDir where unpacked tarballs are kept as read-only bases for overlay testbeds
 * @param cacheMaxBytes the most the bases may take together (see {@link RootfsCache}); empty for no
 *     limit
 * @param rootfsMode an overlay over a cached base, or a full unpack per testbed
 * @param grace how long an interrupted command gets before SIGTERM, then before it is killed
 * @param normalUser the unprivileged account created in each testbed
 * @param privileged whether root's testbeds run with the host's ids rather than in a user namespace
 *     of their own (see docs/security.md)
 * @param config the whole configuration, Akka's part included
 */
public record EngineConfig(
    Path libexecDir,
    Path runtimeDir,
    Path stateDir,
    Path cacheDir,
    OptionalLong cacheMaxBytes,
    RootfsMode rootfsMode,
    GracePeriods grace,
    String normalUser,
    boolean privileged,
    Config config) {

  static {
    // Every use of the engine starts with its configuration: the place to settle logging first.
    QuietLogging.ensureProvider();
  }

  private static final String FILE = "uchroot.conf";
  private static final String SYSTEM_DIR = "/etc/uchroot";
  private static final Path PACKAGE_LIBEXEC_DIR = Path.of("/usr/lib/uchroot/libexec");

  public EngineConfig {
    Objects.requireNonNull(libexecDir, "libexecDir");
    Objects.requireNonNull(runtimeDir, "runtimeDir");
    Objects.requireNonNull(stateDir, "stateDir");
    Objects.requireNonNull(cacheDir, "cacheDir");
    Objects.requireNonNull(cacheMaxBytes, "cacheMaxBytes");
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
    return loadConfig(files());
  }

  /** The defaults, then each of {@code files} that exists, then the system properties. */
  static Config loadConfig(List<Path> files) {
    Config config = ConfigFactory.parseResources("uchroot.conf");
    for (Path file : files) {
      if (Files.isRegularFile(file)) {
        config = ConfigFactory.parseFile(file.toFile()).withFallback(config);
      }
    }
    return ConfigFactory.systemProperties()
        .withFallback(config)
        .withFallback(ConfigFactory.defaultReference())
        .resolve();
  }

  /** The configuration files that may be read, the system's first, the user's last. */
  public static List<Path> files() {
    String system =
        System.getProperty(
            "uchroot.conf.dir",
            Objects.requireNonNullElse(System.getenv("UCHROOT_CONF_DIR"), SYSTEM_DIR));
    String configHome = System.getenv("XDG_CONFIG_HOME");
    Path user =
        configHome != null && !configHome.isEmpty()
            ? Path.of(configHome)
            : Path.of(System.getProperty("user.home"), ".config");
    return List.of(Path.of(system, FILE), user.resolve("uchroot").resolve(FILE));
  }

  public static EngineConfig from(Config config) {
    Config c = config.getConfig("uchroot");
    String libexec = System.getProperty("uchroot.libexec.dir", c.getString("libexec-dir"));
    if (libexec.isEmpty()) {
      libexec =
          installedLibexecDir()
              .orElseThrow(
                  () ->
                      new IllegalStateException(
                          "cannot find uchroot-jobd: neither beside the engine's jar nor in "
                              + PACKAGE_LIBEXEC_DIR
                              + "; install uchroot, or set uchroot.libexec-dir"))
              .toString();
    }
    String state = c.getString("state-dir");
    String cache = c.getString("cache-dir");
    return new EngineConfig(
        Path.of(libexec),
        Host.runtimeDir(),
        state.isEmpty() ? Host.defaultStateDir() : Path.of(state),
        cache.isEmpty() ? Host.defaultCacheDir() : Path.of(cache),
        cacheMaxBytes(c),
        rootfsMode(c),
        new GracePeriods(
            c.getDuration("interrupt.grace-before-term"),
            c.getDuration("interrupt.grace-before-kill")),
        c.getString("normal-user"),
        c.getBoolean("privileged"),
        config);
  }

  /** {@code cache-max-size}: empty for no limit, else a HOCON size such as 20G or 500M. */
  private static OptionalLong cacheMaxBytes(Config c) {
    if (c.getString("cache-max-size").isEmpty()) {
      return OptionalLong.empty();
    }
    long bytes = c.getBytes("cache-max-size");
    if (bytes < 0) {
      throw new IllegalStateException(
          "uchroot.cache-max-size is negative ("
              + bytes
              + "); give a size such as 20G, or \"\" for no limit");
    }
    return OptionalLong.of(bytes);
  }

  /**
   * The native helpers of an installation: in {@code libexec/} beside the {@code lib/} that holds
   * the engine's jar (a distribution directory), else where the .deb puts them.
   */
  private static Optional<Path> installedLibexecDir() {
    List<Path> candidates = new ArrayList<>();
    try {
      Path jar =
          Path.of(EngineConfig.class.getProtectionDomain().getCodeSource().getLocation().toURI());
      if (jar.getParent() != null && jar.getParent().getParent() != null) {
        candidates.add(jar.getParent().getParent().resolve("libexec"));
      }
    } catch (URISyntaxException | SecurityException | NullPointerException e) {
      // Loaded from somewhere that is not a file: only the package's place is left.
    }
    candidates.add(PACKAGE_LIBEXEC_DIR);
    return candidates.stream()
        .filter(dir -> Files.isExecutable(dir.resolve(IdMapping.JOB_SERVER)))
        .findFirst();
  }

  private static RootfsMode rootfsMode(Config c) {
    try {
      return RootfsMode.parse(c.getString("rootfs-mode"));
    } catch (IllegalArgumentException e) {
      throw new IllegalStateException("uchroot.rootfs-mode: " + e.getMessage(), e);
    }
  }

  public EngineConfig withGrace(GracePeriods grace) {
    return new EngineConfig(
        libexecDir,
        runtimeDir,
        stateDir,
        cacheDir,
        cacheMaxBytes,
        rootfsMode,
        grace,
        normalUser,
        privileged,
        config);
  }

  public EngineConfig withRootfsMode(RootfsMode mode) {
    return new EngineConfig(
        libexecDir,
        runtimeDir,
        stateDir,
        cacheDir,
        cacheMaxBytes,
        mode,
        grace,
        normalUser,
        privileged,
        config);
  }

  public EngineConfig withPrivileged(boolean privileged) {
    return new EngineConfig(
        libexecDir,
        runtimeDir,
        stateDir,
        cacheDir,
        cacheMaxBytes,
        rootfsMode,
        grace,
        normalUser,
        privileged,
        config);
  }
}
