package org.uchroot.adapter.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.typesafe.config.Config;
import com.typesafe.config.ConfigFactory;
import java.util.Map;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

class EngineChoiceTest {

  private static final Config SHARED = ConfigFactory.parseString("uchroot.engine.default = shared");
  private static final Config STANDALONE =
      ConfigFactory.parseString("uchroot.engine.default = standalone");

  private static EngineChoice parsed(String... args) {
    EngineChoice choice = new EngineChoice();
    new CommandLine(choice).parseArgs(args);
    return choice;
  }

  @Test
  void theOptionChoosesOverTheVariableAndTheConfiguration() {
    Map<String, String> env = Map.of("UCHROOT_ENGINE", "standalone");
    assertEquals(Optional.empty(), parsed("--engine=shared").standaloneReason(env, STANDALONE));
    assertEquals(
        Optional.of("--engine=standalone"),
        parsed("--engine", "standalone").standaloneReason(Map.of(), SHARED));
  }

  @Test
  void theVariableChoosesOverTheConfiguration() {
    assertEquals(
        Optional.empty(),
        parsed().standaloneReason(Map.of("UCHROOT_ENGINE", "shared"), STANDALONE));
    assertEquals(
        Optional.of("UCHROOT_ENGINE=standalone"),
        parsed().standaloneReason(Map.of("UCHROOT_ENGINE", "standalone"), SHARED));
  }

  @Test
  void whereNothingChoosesTheConfigurationDoes() {
    assertEquals(Optional.empty(), parsed().standaloneReason(Map.of("UCHROOT_ENGINE", ""), SHARED));
    assertEquals(
        Optional.of("uchroot.engine.default is standalone"),
        parsed().standaloneReason(Map.of(), STANDALONE));
  }

  @Test
  void theShippedDefaultIsTheSharedEngine() {
    Config shipped = ConfigFactory.parseResources("uchroot.conf").resolve();
    assertEquals(EngineChoice.Mode.shared, EngineChoice.defaultMode(shipped));
  }

  @Test
  void aDefaultThatIsNeitherSaysWhatItTakes() {
    CliException e =
        assertThrows(
            CliException.class,
            () ->
                EngineChoice.defaultMode(
                    ConfigFactory.parseString("uchroot.engine.default = sometimes")));
    assertEquals(ExitCode.INVALID_ARGUMENT, e.exitCode());
    assertEquals(
        "uchroot.engine.default is \"sometimes\" in uchroot.conf: it is shared or standalone;"
            + " correct it, or choose with --engine or UCHROOT_ENGINE",
        e.getMessage());
  }
}
