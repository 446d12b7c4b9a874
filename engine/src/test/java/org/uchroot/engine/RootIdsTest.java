package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The ids root's testbeds run as: root's own ranges, else a range picked once and recorded. */
class RootIdsTest {

  @TempDir Path tmp;

  private RootIds ids(String subuid, String subgid, String passwd, String group) throws Exception {
    return new RootIds(
        tmp.resolve("state"),
        Files.writeString(tmp.resolve("subuid"), subuid),
        Files.writeString(tmp.resolve("subgid"), subgid),
        Files.writeString(tmp.resolve("passwd"), passwd),
        Files.writeString(tmp.resolve("group"), group));
  }

  @Test
  void rootsOwnRangesComeFirstWhateverLineComesFirst() throws Exception {
    RootIds ids = ids("builder:100000:65536\nroot:200000:65536\n", "0:300000:70000\n", "", "");
    assertEquals(new IdMapping.Remapped(200000, 300000, 65536), ids.mapping());
    assertFalse(Files.exists(tmp.resolve("state").resolve(RootIds.RECORD)), "nothing to record");
  }

  @Test
  void withoutRangesAFreeOneIsPickedRecordedAndKept() throws Exception {
    // The pool's first ranges are taken: a subordinate range, a user, a group.
    RootIds ids =
        ids(
            "builder:524288:65536\n",
            "builder:589824:10\n",
            "root:x:0:0::/root:/bin/sh\nodd:x:655360:655360::/:/bin/sh\n",
            "root:x:0:\n");
    IdMapping.Remapped picked = ids.mapping();
    assertEquals(new IdMapping.Remapped(720896, 720896, 65536), picked);
    Path record = tmp.resolve("state").resolve(RootIds.RECORD);
    assertEquals("720896 720896 65536\n", Files.readString(record));

    // A later server keeps it, even once the pool has changed.
    Files.writeString(tmp.resolve("subuid"), "other:720896:65536\n");
    assertEquals(picked, ids.mapping());
  }

  @Test
  void aBrokenRecordIsOneLineWithWhatToDo() throws Exception {
    RootIds ids = ids("", "", "", "");
    Files.createDirectories(tmp.resolve("state"));
    Files.writeString(tmp.resolve("state").resolve(RootIds.RECORD), "garbage\n");
    UchrootException e = assertThrows(UchrootException.class, ids::mapping);
    assertTrue(e.getMessage().contains("/etc/subuid and /etc/subgid"), e.getMessage());
    assertFalse(e.getMessage().contains("\n"), e.getMessage());
  }
}
