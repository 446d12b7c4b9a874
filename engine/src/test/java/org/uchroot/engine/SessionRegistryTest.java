package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.uchroot.actors.SessionId;

class SessionRegistryTest {

  @Test
  void aSessionOfThisProcessIsLiveAndCannotBeCleanedUp(@TempDir Path tmp) throws Exception {
    SessionRegistry registry =
        new SessionRegistry(
            tmp.resolve("state"), tmp.resolve("run"), EngineConfig.load().libexecDir());
    Path rootfs = Files.createDirectory(tmp.resolve("rootfs"));
    registry.record(new SessionId("s1"), rootfs);
    List<SessionRegistry.Entry> entries = registry.list();
    assertEquals(1, entries.size());
    assertTrue(entries.get(0).live());
    assertEquals(ProcessHandle.current().pid(), entries.get(0).ownerPid());
    UchrootException refused = assertThrows(UchrootException.class, () -> registry.cleanup("s1"));
    assertTrue(refused.getMessage().contains("live"), refused.getMessage());
    assertTrue(Files.isDirectory(rootfs));
  }

  @Test
  void anOrphanIsRemovedWithItsSocketsAndRecord(@TempDir Path tmp) throws Exception {
    SessionRegistry registry =
        new SessionRegistry(
            tmp.resolve("state"), tmp.resolve("run"), EngineConfig.load().libexecDir());
    Path rootfs = Files.createDirectories(tmp.resolve("rootfs/etc"));
    Files.writeString(rootfs.resolve("passwd"), "root:x:0:0::/root:/bin/sh\n");
    Path run = Files.createDirectories(tmp.resolve("run"));
    Path exec = Files.writeString(SessionRegistry.socketOf(run, new SessionId("s2"), "exec"), "");
    Path jobd = Files.writeString(SessionRegistry.socketOf(run, new SessionId("s2"), "jobd"), "");
    Path another =
        Files.writeString(SessionRegistry.socketOf(run, new SessionId("s22"), "exec"), "");
    registry.record(new SessionId("s2"), tmp.resolve("rootfs"));
    // A dead owner: rewrite the record with a pid that started at another time.
    Path record = tmp.resolve("state/s2.session");
    Properties p = new Properties();
    try (var in = Files.newBufferedReader(record)) {
      p.load(in);
    }
    p.setProperty("owner-start", "1970-01-02T00:00:00Z");
    try (var out = Files.newBufferedWriter(record)) {
      p.store(out, null);
    }
    assertEquals(
        List.of("s2"), registry.orphaned().stream().map(SessionRegistry.Entry::session).toList());
    registry.cleanup("s2");
    assertFalse(Files.exists(tmp.resolve("rootfs")));
    assertFalse(Files.exists(exec));
    assertFalse(Files.exists(jobd));
    assertTrue(Files.exists(another), "another session's socket was removed");
    assertEquals(List.of(), registry.list());
  }

  @Test
  void unknownSessionsAreReported(@TempDir Path tmp) {
    SessionRegistry registry =
        new SessionRegistry(
            tmp.resolve("state"), tmp.resolve("run"), EngineConfig.load().libexecDir());
    UchrootException e = assertThrows(UchrootException.class, () -> registry.cleanup("nope"));
    assertEquals("no such session: nope", e.getMessage());
  }
}
