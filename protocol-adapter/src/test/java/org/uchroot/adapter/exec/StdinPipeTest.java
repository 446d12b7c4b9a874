package org.uchroot.adapter.exec;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.util.Random;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

class StdinPipeTest {

  @Test
  void carriesBytesInOrderThroughASmallBuffer() throws Exception {
    byte[] data = new byte[100_000];
    new Random(1).nextBytes(data);
    StdinPipe pipe = new StdinPipe(1000);
    CompletableFuture<byte[]> read =
        CompletableFuture.supplyAsync(
            () -> {
              ByteArrayOutputStream out = new ByteArrayOutputStream();
              try {
                pipe.transferTo(out);
              } catch (Exception e) {
                throw new IllegalStateException(e);
              }
              return out.toByteArray();
            });
    for (int i = 0; i < data.length; i += 777) {
      pipe.write(data, i, Math.min(777, data.length - i));
    }
    pipe.closeWrite();
    assertArrayEquals(data, read.get(10, TimeUnit.SECONDS));
  }

  @Test
  void aClosedReaderReleasesABlockedWriterAndDropsTheData() throws Exception {
    StdinPipe pipe = new StdinPipe(4);
    CompletableFuture<Void> write =
        CompletableFuture.runAsync(
            () -> {
              try {
                pipe.write(new byte[100], 0, 100);
              } catch (Exception e) {
                throw new IllegalStateException(e);
              }
            });
    Thread.sleep(100);
    assertTrue(!write.isDone(), "the writer waits for room");
    pipe.close();
    write.get(10, TimeUnit.SECONDS);
    assertEquals(-1, pipe.read());
  }

  @Test
  void endOfFileAfterTheBufferedBytes() throws Exception {
    StdinPipe pipe = new StdinPipe(16);
    pipe.write("abc".getBytes(), 0, 3);
    pipe.closeWrite();
    assertEquals(3, pipe.available());
    assertEquals('a', pipe.read());
    byte[] rest = new byte[10];
    assertEquals(2, pipe.read(rest, 0, 10));
    assertEquals(-1, pipe.read(rest, 0, 10));
  }
}
