package org.uchroot.adapter.exec;

import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;

/**
 * Carries a remote client's stdin to a command: the connection's reader thread {@link #write}s, the
 * engine's stdin pump reads. Bounded, so that a command that does not read its stdin holds back the
 * client rather than the server's memory. Unlike {@link java.io.PipedInputStream} it does not care
 * which threads are alive: the engine's pump runs on pooled threads.
 */
final class StdinPipe extends InputStream {

  private final byte[] buffer;
  private int head;
  private int count;
  private boolean writeClosed;
  private boolean readClosed;

  StdinPipe(int capacity) {
    buffer = new byte[capacity];
  }

  /**
   * Blocks while the buffer is full. Once the reading side has closed (the command closed its
   * stdin, or ended) the data is dropped, as a pipe without readers would.
   */
  synchronized void write(byte[] data, int offset, int length) throws InterruptedIOException {
    int written = 0;
    while (written < length) {
      while (count == buffer.length && !readClosed) {
        try {
          wait();
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new InterruptedIOException();
        }
      }
      if (readClosed) {
        return;
      }
      int tail = (head + count) % buffer.length;
      int n = Math.min(length - written, Math.min(buffer.length - count, buffer.length - tail));
      System.arraycopy(data, offset + written, buffer, tail, n);
      count += n;
      written += n;
      notifyAll();
    }
  }

  /** End of the client's stdin: the command reads end of file once the buffer is drained. */
  synchronized void closeWrite() {
    writeClosed = true;
    notifyAll();
  }

  @Override
  public synchronized int read() throws IOException {
    byte[] one = new byte[1];
    return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
  }

  @Override
  public synchronized int read(byte[] into, int offset, int length) throws IOException {
    if (length == 0) {
      return 0;
    }
    while (count == 0 && !writeClosed && !readClosed) {
      try {
        wait();
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException();
      }
    }
    if (count == 0) {
      return -1;
    }
    int n = Math.min(length, Math.min(count, buffer.length - head));
    System.arraycopy(buffer, head, into, offset, n);
    head = (head + n) % buffer.length;
    count -= n;
    notifyAll();
    return n;
  }

  @Override
  public synchronized int available() {
    return count;
  }

  /** The reading side is done: drop what is buffered and what still comes. */
  @Override
  public synchronized void close() {
    readClosed = true;
    count = 0;
    notifyAll();
  }
}
