package org.uchroot.adapter.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class CacheCommandTest {

  /** As GNU du -h writes them. */
  @Test
  void sizesReadLikeDuH() {
    assertEquals("0", CacheCommand.humanSize(0));
    assertEquals("1023", CacheCommand.humanSize(1023));
    assertEquals("1.0K", CacheCommand.humanSize(1024));
    assertEquals("1.1K", CacheCommand.humanSize(1025));
    assertEquals("9.9K", CacheCommand.humanSize(9 * 1024 + 900));
    assertEquals("10K", CacheCommand.humanSize(10 * 1024 - 1));
    assertEquals("312M", CacheCommand.humanSize(312L << 20));
    assertEquals("1.0M", CacheCommand.humanSize((1L << 20) - 1));
    assertEquals("20G", CacheCommand.humanSize(20L << 30));
  }
}
