package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.typesafe.config.ConfigFactory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.OptionalLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EngineConfigTest {

  @TempDir Path dir;

  @Test
  void theUsersFileOverridesTheSystemsAndSystemPropertiesOverrideBoth() throws IOException {
    Path system =
        Files.writeString(
            dir.resolve("system.conf"),
            "uchroot.interrupt { grace-before-term = 7s, grace-before-kill = 8s }\n"
                + "uchroot.normal-user = builder\n");
    Path user =
        Files.writeString(dir.resolve("user.conf"), "uchroot.interrupt.grace-before-term = 9s\n");
    System.setProperty("uchroot.normal-user", "tester");
    // Typesafe Config keeps the system properties it read first.
    ConfigFactory.invalidateCaches();
    try {
      EngineConfig config =
          EngineConfig.from(EngineConfig.loadConfig(List.of(system, user, dir.resolve("none"))));
      assertEquals(Duration.ofSeconds(9), config.grace().beforeTerm());
      assertEquals(Duration.ofSeconds(8), config.grace().beforeKill());
      assertEquals("tester", config.normalUser());
    } finally {
      System.clearProperty("uchroot.normal-user");
      ConfigFactory.invalidateCaches();
    }
  }

  @Test
  void theCacheSizeLimitIsAHoconSizeOrNone() throws IOException {
    Path limited = Files.writeString(dir.resolve("limited.conf"), "uchroot.cache-max-size = 20G\n");
    Path quoted =
        Files.writeString(dir.resolve("quoted.conf"), "uchroot.cache-max-size = \"500M\"\n");
    assertEquals(
        OptionalLong.of(20L << 30),
        EngineConfig.from(EngineConfig.loadConfig(List.of(limited))).cacheMaxBytes());
    assertEquals(
        OptionalLong.of(500L << 20),
        EngineConfig.from(EngineConfig.loadConfig(List.of(quoted))).cacheMaxBytes());
    assertEquals(
        OptionalLong.empty(),
        EngineConfig.from(EngineConfig.loadConfig(List.of())).cacheMaxBytes());
  }

  @Test
  void theSystemFileIsInTheConfigurationDirectoryAndTheUsersUnderTheirHome() {
    String dirProperty = System.getProperty("uchroot.conf.dir");
    System.setProperty("uchroot.conf.dir", dir.toString());
    try {
      List<Path> files = EngineConfig.files();
      assertEquals(dir.resolve("uchroot.conf"), files.get(0));
      String configHome = System.getenv("XDG_CONFIG_HOME");
      Path expected =
          configHome != null && !configHome.isEmpty()
              ? Path.of(configHome, "uchroot", "uchroot.conf")
              : Path.of(System.getProperty("user.home"), ".config", "uchroot", "uchroot.conf");
      assertEquals(expected, files.get(1));
    } finally {
      if (dirProperty == null) {
        System.clearProperty("uchroot.conf.dir");
      } else {
        System.setProperty("uchroot.conf.dir", dirProperty);
      }
    }
  }
}
