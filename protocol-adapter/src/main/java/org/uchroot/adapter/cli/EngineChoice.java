package org.uchroot.adapter.cli;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigException;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import picocli.CommandLine.Option;

/**
 * Which server a frontend's testbed gets: the user's shared engine, or a server of its own. The
 * option, else {@code $UCHROOT_ENGINE}, else {@code uchroot.engine.default} in uchroot.conf. The
 * native frontend reads the option and the variable itself, so as to go straight to a server of its
 * own; the configuration is read here, by the engine, or by an engine the frontend starts with
 * {@code --unless-default-standalone}.
 */
final class EngineChoice {

  static final String VARIABLE = "UCHROOT_ENGINE";

  static final String DEFAULT_KEY = "uchroot.engine.default";

  @Option(
      names = "--engine",
      paramLabel = "MODE",
      description =
          "shared: serve the testbed in the user's shared engine (started if need be);"
              + " standalone: in a server of its own (default: $UCHROOT_ENGINE, else"
              + " engine.default in uchroot.conf, which is shared).")
  Mode engine;

  enum Mode {
    shared,
    standalone
  }

  /**
   * Why the frontend whose environment is {@code env} is to run a server of its own rather than be
   * served by the shared engine whose configuration is {@code config}; empty where the engine
   * serves it.
   */
  Optional<String> standaloneReason(Map<String, String> env, Config config) {
    if (engine != null) {
      return engine == Mode.standalone ? Optional.of("--engine=standalone") : Optional.empty();
    }
    String variable = env.get(VARIABLE);
    if (variable != null && !variable.isEmpty()) {
      return variable.equals(Mode.shared.name())
          ? Optional.empty()
          : Optional.of(VARIABLE + "=" + variable);
    }
    return defaultMode(config) == Mode.standalone
        ? Optional.of(DEFAULT_KEY + " is standalone")
        : Optional.empty();
  }

  /** The frontends' server where neither the option nor the variable chooses. */
  static Mode defaultMode(Config config) {
    String value;
    try {
      value = config.getString(DEFAULT_KEY);
    } catch (ConfigException e) {
      throw new CliException(ExitCode.INVALID_ARGUMENT, e.getMessage());
    }
    try {
      return Mode.valueOf(value.strip().toLowerCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new CliException(
          ExitCode.INVALID_ARGUMENT,
          DEFAULT_KEY
              + " is \""
              + value
              + "\" in uchroot.conf: it is shared or standalone; correct it, or choose with"
              + " --engine or UCHROOT_ENGINE");
    }
  }
}
