package org.uchroot.adapter.cli;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.regex.Pattern;
import org.uchroot.actors.BindMount;
import org.uchroot.actors.GracePeriods;
import org.uchroot.actors.RootfsMode;
import org.uchroot.actors.SessionSpec;
import org.uchroot.adapter.Durations;
import org.uchroot.adapter.service.EngineClient;
import org.uchroot.adapter.virt.AptProxy;
import org.uchroot.engine.Engine;
import org.uchroot.engine.EngineConfig;
import org.uchroot.engine.Host;
import org.uchroot.engine.UchrootException;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.Option;
import picocli.CommandLine.TypeConversionException;

/**
 * The options of {@code autopkgtest-virt-unshare}, with its defaults, checks and messages, plus the
 * grace periods of an interrupt. Shared by {@code virt-server} and {@code run}.
 */
public final class TestbedOptions {

  @Option(
      names = {"-a", "--arch"},
      paramLabel = "ARCH",
      defaultValue = "*",
      description = "Debian name of the architecture (default: ${DEFAULT-VALUE}).")
  String arch;

  @Option(
      names = {"-b", "--bind"},
      arity = "2",
      paramLabel = "OUTSIDE INSIDE",
      hideParamSyntax = true,
      description = "Bind mount a directory from the outside to a mountpoint inside.")
  List<String> bind = new ArrayList<>();

  @Option(
      names = {"-d", "--debug"},
      description = "Enable debugging output.")
  boolean debug;

  @Option(
      names = {"-p", "--prefix"},
      paramLabel = "PREFIX",
      description =
          "Prefix for the temporary unpack directory (as Python's mkdtemp: a name prefix, or a"
              + " path; relative to $TMPDIR, else $TEMP, $TMP, /tmp).")
  String prefix;

  @Option(
      names = {"-r", "--release"},
      paramLabel = "RELEASE",
      defaultValue = "*",
      description = "The distribution to use (default: ${DEFAULT-VALUE}).")
  String release;

  @Option(
      names = {"-t", "--tarball"},
      paramLabel = "TARBALL",
      description =
          "Path to rootfs tarball (default: the first RELEASE-ARCH.t* in $XDG_CACHE_HOME/sbuild,"
              + " or ~/.cache/sbuild).")
  String tarball;

  @Option(
      names = {"-u", "--unpack-dir"},
      paramLabel = "UNPACK_DIR",
      description = "Temporary unpack directory; must not exist yet.")
  String unpackDir;

  @Option(
      names = "--grace-before-term",
      paramLabel = "DURATION",
      converter = DurationConverter.class,
      description = "After an interrupt, how long before SIGTERM (e.g. 5s, 500ms; default: conf).")
  Duration graceBeforeTerm;

  @Option(
      names = "--grace-before-kill",
      paramLabel = "DURATION",
      converter = DurationConverter.class,
      description = "After SIGTERM, how long before the command is killed (default: conf).")
  Duration graceBeforeKill;

  @Option(
      names = "--rootfs-mode",
      paramLabel = "MODE",
      description =
          "overlay: a fresh overlay over a base unpacked once per tarball; unpack: the whole"
              + " tarball for every open and revert (default: conf, overlay).")
  String rootfsMode;

  @Option(
      names = "--privileged",
      description =
          "Run root's testbeds with the host's ids, as autopkgtest-virt-unshare does: the"
              + " testbed's root is then the host's root (default: conf, off; see"
              + " docs/security.md).")
  boolean privileged;

  @Option(
      names = "--apt-proxy",
      paramLabel = "URL",
      description =
          "Send the testbed's apt through this caching proxy (e.g. http://127.0.0.1:3142/), set"
              + " again after every revert; https sources go direct.")
  String aptProxy;

  /** The apt proxy asked for, checked. */
  Optional<AptProxy> aptProxy() {
    if (aptProxy == null) {
      return Optional.empty();
    }
    try {
      return Optional.of(new AptProxy(aptProxy));
    } catch (IllegalArgumentException e) {
      throw new CliException(ExitCode.INVALID_ARGUMENT, e.getMessage());
    }
  }

  /**
   * What relative paths are relative to: this process's working directory, or a frontend's when a
   * shared engine serves it.
   */
  Path workingDirectory = Path.of("").toAbsolutePath();

  /**
   * What these options ask for, checked in the reference's order: the tarball (which may be
   * missing: the caller decides when that fails), the bind mounts, the unpack directory. Paths have
   * a leading {@code ~} and {@code $VAR} expanded, as the reference's shell expands them.
   */
  Choice choose(Map<String, String> env) {
    return new Choice(
        tarball(env), binds(env), unpackDir(env), unpackPrefix(env), missingTarballMessage(env));
  }

  /** Random names of Python's mkdtemp, which the reference uses, follow the prefix. */
  private static final String DEFAULT_PREFIX = "uchroot.";

  /**
   * Where a fresh unpack directory goes, as the path its random name is appended to: {@code
   * --prefix} (default {@value #DEFAULT_PREFIX}) under Python's temporary directory, as the
   * reference's {@code mkdtemp(prefix=...)} places it. Empty with {@code -u}. The directory the
   * prefix names must exist: Python's mkdtemp does not create it either.
   */
  Optional<String> unpackPrefix(Map<String, String> env) {
    if (unpackDir != null) {
      return Optional.empty();
    }
    String name = prefix == null ? DEFAULT_PREFIX : ShellExpansion.expand(prefix, env);
    // A stand-in for the random end, so that a prefix ending in "/" keeps its meaning through
    // Path's normalising.
    Path prefixed = temporaryDirectory(env, workingDirectory).resolve(name + "X").normalize();
    Path parent = prefixed.getParent();
    if (!Files.isDirectory(parent)) {
      throw new CliException(
          ExitCode.INVALID_ARGUMENT,
          "cannot make the unpack directory "
              + prefixed.toString().replaceFirst("X$", "XXXXXXXX")
              + ": "
              + parent
              + " is not a directory; create it, or give another --prefix");
    }
    String path = prefixed.toString();
    return Optional.of(path.substring(0, path.length() - 1));
  }

  /**
   * Python's {@code tempfile.gettempdir()}: the first of {@code $TMPDIR}, {@code $TEMP}, {@code
   * $TMP}, /tmp, /var/tmp, /usr/tmp and the working directory that is a directory this user can
   * write to.
   */
  static Path temporaryDirectory(Map<String, String> env) {
    return temporaryDirectory(env, Path.of("").toAbsolutePath());
  }

  private static Path temporaryDirectory(Map<String, String> env, Path workingDirectory) {
    List<String> candidates = new ArrayList<>();
    for (String variable : List.of("TMPDIR", "TEMP", "TMP")) {
      String value = env.get(variable);
      if (value != null && !value.isEmpty()) {
        candidates.add(value);
      }
    }
    candidates.addAll(List.of("/tmp", "/var/tmp", "/usr/tmp"));
    for (String candidate : candidates) {
      Path dir = workingDirectory.resolve(candidate).normalize();
      if (Files.isDirectory(dir) && Files.isWritable(dir) && Files.isExecutable(dir)) {
        return dir;
      }
    }
    return workingDirectory;
  }

  /** A checked testbed request; {@link #spec} fails with the reference's words without tarball. */
  record Choice(
      Optional<Path> tarball,
      List<BindMount> binds,
      Optional<Path> unpackDir,
      Optional<String> prefix,
      String missingTarball) {

    SessionSpec spec(String normalUser) {
      return new SessionSpec(
          tarball.orElseThrow(() -> new UchrootException(missingTarball)),
          binds,
          unpackDir,
          prefix,
          normalUser);
    }
  }

  /** The bind mounts, checked as the reference checks them. */
  List<BindMount> binds(Map<String, String> env) {
    List<BindMount> binds = new ArrayList<>();
    for (int i = 0; i + 1 < bind.size(); i += 2) {
      String outside = ShellExpansion.expand(bind.get(i), env);
      String inside = ShellExpansion.expand(bind.get(i + 1), env);
      Path outsideDir = workingDirectory.resolve(outside);
      if (!Files.isDirectory(outsideDir)) {
        throw new CliException(ExitCode.INVALID_ARGUMENT, BindMount.outsideMissing(outsideDir));
      }
      try {
        binds.add(new BindMount(outsideDir, inside));
      } catch (IllegalArgumentException e) {
        throw new CliException(ExitCode.INVALID_ARGUMENT, e.getMessage());
      }
    }
    return binds;
  }

  /**
   * The unpack directory, which the engine creates with its parents, as the reference's {@code
   * os.makedirs}: it must not exist yet. Relative to the working directory.
   */
  Optional<Path> unpackDir(Map<String, String> env) {
    if (unpackDir == null) {
      return Optional.empty();
    }
    Path dir = Path.of(ShellExpansion.expand(unpackDir, env));
    if (Files.exists(workingDirectory.resolve(dir))) {
      throw new CliException(ExitCode.INVALID_ARGUMENT, dir + ": File exists");
    }
    return Optional.of(workingDirectory.resolve(dir));
  }

  /**
   * The tarball given, or the first {@code RELEASE-ARCH.t*} (in name order) in the sbuild cache
   * directory; empty when there is none.
   */
  Optional<Path> tarball(Map<String, String> env) {
    if (tarball != null) {
      return Optional.of(workingDirectory.resolve(ShellExpansion.expand(tarball, env)));
    }
    Pattern pattern = Globs.toRegex(release + "-" + arch + ".t*");
    List<Path> matches = new ArrayList<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(cacheDir(env))) {
      for (Path entry : entries) {
        if (pattern.matcher(entry.getFileName().toString()).matches()) {
          matches.add(entry);
        }
      }
    } catch (IOException e) {
      return Optional.empty();
    }
    return matches.stream().sorted().findFirst();
  }

  /**
   * {@code $XDG_CACHE_HOME/sbuild}, or {@code ~/.cache/sbuild} when that is unset, empty or
   * relative, as the XDG base directory specification says. (The reference joins {@code /sbuild},
   * which is absolute, and so looks in {@code /sbuild} whenever the variable is set.)
   */
  static Path cacheDir(Map<String, String> env) {
    String xdg = env.get("XDG_CACHE_HOME");
    if (xdg != null && xdg.startsWith("/")) {
      return Path.of(xdg, "sbuild");
    }
    String home = env.getOrDefault("HOME", System.getProperty("user.home"));
    return Path.of(home, ".cache", "sbuild");
  }

  static String missingTarballMessage(Map<String, String> env) {
    return "Unable to find chroot in " + cacheDir(env);
  }

  /**
   * What a frontend's options ask of the shared engine, its working directory and environment
   * reading them; empty, the frontend told to run a process of its own, where it chose one or its
   * options ask for other ids than the engine's.
   */
  Optional<InEngine> inEngine(EngineClient frontend, EngineChoice engineChoice) {
    if (debug) {
      frontend.enableDebug();
    }
    EngineConfig config = frontend.engine().config();
    Optional<String> standalone =
        engineChoice.standaloneReason(frontend.environment(), config.config());
    if (standalone.isPresent()) {
      frontend.runStandalone(standalone.get());
      return Optional.empty();
    }
    EngineConfig asked = configure(config);
    String differs = VirtServerCommand.differences(config, asked);
    if (differs != null) {
      frontend.runStandalone("the shared engine's " + differs);
      return Optional.empty();
    }
    workingDirectory = frontend.workingDirectory();
    return Optional.of(new InEngine(choose(frontend.environment()), config, asked));
  }

  /**
   * A frontend's session in the shared engine: what it is made of, the engine's settings, and those
   * with the frontend's own (grace periods, rootfs mode).
   */
  record InEngine(Choice choice, EngineConfig config, EngineConfig asked) {

    /** The session's spec; fails where no tarball was found. */
    SessionSpec spec() {
      return choice
          .spec(config.normalUser())
          .withGrace(asked.grace())
          .withRootfsMode(asked.rootfsMode());
    }
  }

  /** An engine started for a command line that makes testbeds itself, and what they are made of. */
  record Started(Engine engine, SessionSpec spec) {}

  /**
   * Starts an engine for {@code run} and {@code batch}: a missing tarball ends the command line,
   * Ctrl+C interrupts the commands and a second one kills them (the testbeds are still removed),
   * SIGTERM and SIGHUP close everything first.
   */
  Started startEngine(Map<String, String> env) {
    Choice choice = choose(env);
    if (choice.tarball().isEmpty()) {
      throw new CliException(ExitCode.INVALID_ARGUMENT, choice.missingTarball());
    }
    EngineConfig config = configure(Main.loadConfig());
    SessionSpec spec = choice.spec(config.normalUser());
    Engine engine = Engine.start(config);
    Signals.onTermination(engine::close);
    Signals.onInterrupt(
        config.grace(),
        () -> {
          engine.interruptAll();
          return "interrupting the commands";
        },
        () -> {
          engine.killAll();
          return "killing the commands now";
        });
    return new Started(engine, spec);
  }

  /** The configuration with what the command line gives: rootfs mode, ids, grace periods. */
  EngineConfig configure(EngineConfig config) {
    if (privileged && !Host.isRoot()) {
      throw new CliException(
          ExitCode.INVALID_ARGUMENT,
          "--privileged needs root: another user's testbeds always run as that user");
    }
    if (privileged) {
      config = config.withPrivileged(true);
    }
    if (rootfsMode != null) {
      try {
        config = config.withRootfsMode(RootfsMode.parse(rootfsMode));
      } catch (IllegalArgumentException e) {
        throw new CliException(ExitCode.INVALID_ARGUMENT, e.getMessage());
      }
    }
    if (graceBeforeTerm == null && graceBeforeKill == null) {
      return config;
    }
    GracePeriods grace = config.grace();
    return config.withGrace(
        new GracePeriods(
            graceBeforeTerm != null ? graceBeforeTerm : grace.beforeTerm(),
            graceBeforeKill != null ? graceBeforeKill : grace.beforeKill()));
  }

  /** A duration option: see {@link Durations#parse}. */
  static final class DurationConverter implements ITypeConverter<Duration> {
    @Override
    public Duration convert(String value) {
      try {
        return Durations.parse(value);
      } catch (IllegalArgumentException e) {
        throw new TypeConversionException(e.getMessage());
      }
    }
  }
}
