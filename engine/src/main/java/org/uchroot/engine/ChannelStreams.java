package org.uchroot.engine;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.channels.ByteChannel;

/**
 * Blocking streams over a socket channel that let one thread read while others write. The JDK's
 * {@code Channels.newInputStream} and {@code newOutputStream} take the same lock for both on a
 * selectable channel, so a blocked read would hold back every write.
 */
public final class ChannelStreams {

  private ChannelStreams() {}

  public static InputStream input(ByteChannel channel) {
    return new InputStream() {
      @Override
      public int read() throws IOException {
        byte[] one = new byte[1];
        return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
      }

      @Override
      public int read(byte[] into, int offset, int length) throws IOException {
        if (length == 0) {
          return 0;
        }
        int n;
        do {
          n = channel.read(ByteBuffer.wrap(into, offset, length));
        } while (n == 0);
        return n;
      }
    };
  }

  public static OutputStream output(ByteChannel channel) {
    return new OutputStream() {
      @Override
      public void write(int b) throws IOException {
        write(new byte[] {(byte) b}, 0, 1);
      }

      @Override
      public void write(byte[] data, int offset, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.wrap(data, offset, length);
        while (buffer.hasRemaining()) {
          channel.write(buffer);
        }
      }
    };
  }
}
