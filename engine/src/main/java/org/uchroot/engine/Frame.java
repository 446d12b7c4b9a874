package org.uchroot.engine;

import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;

/**
 * One frame of uchroot's sockets (the exec relay, the engine socket, the job server): a type byte,
 * a 4-byte big-endian payload length, the payload. The Java side of {@code
 * engine/src/main/c/frame.h}; {@code docs/protocol.md} lists the types.
 *
 * @param type one of the type constants below
 * @param payload the bytes after the header (never shared with the caller's buffers)
 */
public record Frame(byte type, byte[] payload) {

  /** Client to server: the command, each argument NUL-terminated; the first frame, once. */
  public static final byte ARGV = 'a';

  /** Client to server: data for the command's stdin. */
  public static final byte STDIN = 'i';

  /** Client to server: end of the command's stdin (empty payload). */
  public static final byte STDIN_END = 'c';

  /** Client to server: the client received a signal (1 byte: its number). */
  public static final byte SIGNAL = 's';

  /** Engine socket, client to engine: the client's working directory; before {@link #ARGV}. */
  public static final byte WORKING_DIRECTORY = 'w';

  /** Engine socket, client to engine: the client's environment, each NAME=VALUE NUL-terminated. */
  public static final byte ENVIRONMENT = 'v';

  /**
   * Engine socket, client to engine: the device of the client's controlling terminal (a path),
   * which the engine opens to lend it to {@code shell}; before {@link #ARGV}, where there is one.
   */
  public static final byte TERMINAL_DEVICE = 'y';

  /**
   * Engine socket, engine to client: this session needs a server of its own, for the reason given
   * (one UTF-8 line); the last frame.
   */
  public static final byte STANDALONE = 'l';

  /** Server to client: data the command wrote to stdout. */
  public static final byte STDOUT = 'o';

  /** Server to client: data the command wrote to stderr. */
  public static final byte STDERR = 'e';

  /** Server to client: the command's status as a shell reports it (1 byte); the last frame. */
  public static final byte EXIT = 'x';

  /** Server to client: why the command could not run (one UTF-8 line); the last frame. */
  public static final byte FAILURE = 'f';

  /** Job server, engine to server: the host file that is the command's stdin. */
  public static final byte JOB_STDIN_FILE = '<';

  /** Job server, engine to server: the host file that is the command's stdout. */
  public static final byte JOB_STDOUT_FILE = '>';

  /** Job server, engine to server: a pseudo-terminal of this size (rows, columns: 16 bits each). */
  public static final byte JOB_TERMINAL = 't';

  /** Job server, engine to server: the command's terminal has this new size (as above). */
  public static final byte JOB_TERMINAL_SIZE = 'w';

  public static final int HEADER_LENGTH = 5;

  /** Payloads are cut at this size so that the native client never needs a bigger buffer. */
  public static final int MAX_DATA = 32768;

  /** No command has more arguments: more than a Linux execve takes in the largest argv frame. */
  public static final int MAX_ARGUMENTS = 1 << 20;

  /** A frame that breaks the protocol; the message says how, for the client to read. */
  public static final class Malformed extends IOException {
    public Malformed(String message) {
      super(message);
    }
  }

  public Frame {
    Objects.requireNonNull(payload, "payload");
  }

  public static Frame exit(int shellStatus) {
    return new Frame(EXIT, new byte[] {(byte) shellStatus});
  }

  public static Frame failure(String message) {
    return new Frame(FAILURE, message.getBytes(StandardCharsets.UTF_8));
  }

  public static Frame signal(int number) {
    return new Frame(SIGNAL, new byte[] {(byte) number});
  }

  public static Frame argv(List<String> argv) {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    for (String arg : argv) {
      out.writeBytes(arg.getBytes(StandardCharsets.UTF_8));
      out.write(0);
    }
    return new Frame(ARGV, out.toByteArray());
  }

  /**
   * The arguments of an {@link #ARGV} payload: every one ends with a NUL.
   *
   * @throws IOException if the payload does not end with a NUL
   */
  public List<String> arguments() throws Malformed {
    List<String> args = new ArrayList<>();
    int start = 0;
    for (int i = 0; i < payload.length; i++) {
      if (payload[i] == 0) {
        if (args.size() == MAX_ARGUMENTS) {
          throw new Malformed("the command has more than " + MAX_ARGUMENTS + " arguments");
        }
        args.add(new String(payload, start, i - start, StandardCharsets.UTF_8));
        start = i + 1;
      }
    }
    if (start != payload.length) {
      throw new Malformed("the last argument is not NUL-terminated");
    }
    return args;
  }

  public String text() {
    return new String(payload, StandardCharsets.UTF_8);
  }

  /**
   * A buffer with a frame's header and room for its payload, positioned after the header: for the
   * writers that build frames in NIO buffers.
   */
  public static ByteBuffer buffer(byte type, int length) {
    return ByteBuffer.allocate(HEADER_LENGTH + length).put(type).putInt(length);
  }

  /** The payload length of the header at the start of {@code header}. */
  public static int length(ByteBuffer header) {
    return header.getInt(1);
  }

  /** Writes one frame; the caller flushes and serialises writers. */
  public static void write(OutputStream out, byte type, byte[] data, int offset, int length)
      throws IOException {
    out.write(
        new byte[] {
          type, (byte) (length >>> 24), (byte) (length >>> 16), (byte) (length >>> 8), (byte) length
        });
    out.write(data, offset, length);
  }

  public void writeTo(OutputStream out) throws IOException {
    write(out, type, payload, 0, payload.length);
  }

  /**
   * Reads one frame.
   *
   * @return the frame, or null at end of stream on a frame boundary
   * @throws EOFException if the stream ends inside a frame
   * @throws Malformed if the payload is longer than {@code maxPayload}
   */
  public static Frame read(InputStream in, int maxPayload) throws IOException {
    int type = in.read();
    if (type < 0) {
      return null;
    }
    DataInputStream data = new DataInputStream(in);
    int length = data.readInt();
    if (length < 0 || length > maxPayload) {
      throw new Malformed(
          "frame '"
              + (char) type
              + "' of "
              + Integer.toUnsignedString(length)
              + " bytes is longer than the limit of "
              + maxPayload
              + " bytes");
    }
    byte[] payload = new byte[length];
    data.readFully(payload);
    return new Frame((byte) type, payload);
  }

  @Override
  public boolean equals(Object other) {
    return other instanceof Frame f && f.type == type && Arrays.equals(f.payload, payload);
  }

  @Override
  public int hashCode() {
    return 31 * type + Arrays.hashCode(payload);
  }

  @Override
  public String toString() {
    return "Frame[" + (char) type + ", " + payload.length + " bytes]";
  }
}
