package org.uchroot.engine;

import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.channels.SocketChannel;

/**
 * Writes whole frames to one connection from any thread. Once the client has gone, or after the
 * last frame, output is dropped: the engine must be able to drain a command whose reader left.
 */
public final class FrameWriter {
  private final OutputStream out;
  private boolean closed;

  public FrameWriter(SocketChannel channel) {
    this.out = new BufferedOutputStream(ChannelStreams.output(channel), Frame.MAX_DATA + 5);
  }

  public synchronized void send(byte type, byte[] data, int offset, int length) {
    if (closed) {
      return;
    }
    try {
      int done = 0;
      do {
        int n = Math.min(Frame.MAX_DATA, length - done);
        Frame.write(out, type, data, offset + done, n);
        done += n;
      } while (done < length);
      out.flush();
    } catch (IOException e) {
      closed = true;
    }
  }

  public void send(Frame frame) {
    send(frame.type(), frame.payload(), 0, frame.payload().length);
  }

  public synchronized void finish(Frame frame) {
    send(frame.type(), frame.payload(), 0, frame.payload().length);
    closed = true;
  }

  public synchronized void discard() {
    closed = true;
  }

  public synchronized boolean isClosed() {
    return closed;
  }

  /**
   * Frames of {@code type} for the data written: lost once the client has gone, for output that
   * must not hold back whoever writes it.
   */
  public OutputStream stream(byte type) {
    return new OutputStream() {
      @Override
      public void write(int b) {
        send(type, new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] data, int offset, int length) {
        if (length > 0) {
          send(type, data, offset, length);
        }
      }
    };
  }

  /** As {@link #stream}, but a write fails once the client has gone: for answers it must get. */
  public OutputStream checkedStream(byte type) {
    return new OutputStream() {
      @Override
      public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] data, int offset, int length) throws IOException {
        send(type, data, offset, length);
        if (isClosed()) {
          throw new IOException("the client has gone");
        }
      }
    };
  }
}
