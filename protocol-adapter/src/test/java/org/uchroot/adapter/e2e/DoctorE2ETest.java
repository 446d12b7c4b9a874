package org.uchroot.adapter.e2e;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code uchroot doctor} from the built distribution, on this machine, which can make testbeds. */
@Tag("e2e")
class DoctorE2ETest {

  @TempDir Path dir;

  @Test
  void rootAndAnUnprivilegedUserAreToldTheyCanMakeTestbeds() throws Exception {
    E2e.requireRoot();
    for (String user : Arrays.asList(null, E2e.testUser())) {
      E2e.Result result = doctor(user == null ? "root" : user, user, Map.of());
      assertEquals(0, result.exitCode, result.describe());
      List<String> lines = result.output.lines().toList();
      assertEquals(9, lines.size(), result.describe());
      for (String line : lines) {
        assertTrue(line.startsWith("ok   ") || line.startsWith("warn "), result.describe());
      }
      // What this machine's tests rely on, whatever is merely slower here.
      for (String check : List.of("subordinate ids", "user namespaces", "cache directory")) {
        assertTrue(result.output.contains("ok   " + check + ": "), result.describe());
      }
    }
  }

  @Test
  void anUnwritableCacheIsAFailureThatSaysWhatToChange() throws Exception {
    String user = E2e.testUser();
    Path locked = Files.createDirectory(dir.resolve("locked"));
    Path config = dir.resolve("config");
    E2e.write(
        config.resolve("uchroot/uchroot.conf"),
        "uchroot.cache-dir = \"" + locked.resolve("cache") + "\"\n");
    E2e.chownTree(config, user);

    E2e.Result result =
        doctor("unwritable-cache", user, Map.of("XDG_CONFIG_HOME", config.toString()));

    assertEquals(125, result.exitCode, result.describe());
    String line =
        result.output.lines().filter(l -> l.contains("cache directory")).findFirst().orElse("");
    assertTrue(
        line.startsWith("FAIL cache directory: " + locked.resolve("cache") + " ("),
        result.describe());
    assertTrue(
        line.endsWith(
            locked
                + ", above it, is not writable by "
                + user
                + "; to fix: give "
                + user
                + " write access to "
                + locked
                + ", or set uchroot.cache-dir in"
                + " ~/.config/uchroot/uchroot.conf elsewhere"),
        result.describe());
  }

  private E2e.Result doctor(String name, String user, Map<String, String> extra) throws Exception {
    // The test user must reach the directories made here.
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    Path tmp = Files.createDirectories(dir.resolve("tmp"));
    Files.setPosixFilePermissions(tmp, PosixFilePermissions.fromString("rwxrwxrwx"));
    Map<String, String> env = new LinkedHashMap<>(E2e.childEnvironment(tmp));
    // Each caller's own runtime directory, where that caller can make it.
    env.computeIfPresent(
        "UCHROOT_RUNTIME_DIR", (key, value) -> tmp.resolve("run-" + name).toString());
    env.putAll(extra);
    return E2e.run(
        "doctor-" + name,
        user,
        Path.of("/"),
        env,
        Duration.ofMinutes(2),
        List.of(E2e.distributionDir().resolve("bin/uchroot").toString(), "doctor"));
  }
}
