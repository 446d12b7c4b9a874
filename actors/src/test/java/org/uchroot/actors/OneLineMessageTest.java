package org.uchroot.actors;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import org.junit.jupiter.api.Test;

class OneLineMessageTest {

  @Test
  void theCauseSpeaksNotTheFuturesItCameThrough() {
    Throwable wrapped =
        new CompletionException(new ExecutionException(new IOException("disk full")));
    assertEquals("disk full", OneLineMessage.of(wrapped));
  }

  @Test
  void linesAreJoinedAndTheEndsTrimmed() {
    assertEquals(
        "tar: x: Cannot open; tar: Exiting with failure status",
        OneLineMessage.of("\n tar: x: Cannot open  \n\n  tar: Exiting with failure status\n"));
    assertEquals("a; b", OneLineMessage.of(new IllegalStateException("a\nb")));
  }

  @Test
  void aFailureWithoutAMessageIsNamedByItsClass() {
    assertEquals("java.lang.NullPointerException", OneLineMessage.of(new NullPointerException()));
    assertEquals(
        "java.lang.IllegalStateException",
        OneLineMessage.of(new CompletionException(new IllegalStateException(" "))));
  }
}
