package org.uchroot.engine;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.util.HexFormat;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The exec relay's framing, byte for byte as uchroot-exec.c writes and parses it. */
class FrameTest {

  private static final HexFormat HEX = HexFormat.of();

  @Test
  void encodesTypeLengthAndPayload() throws IOException {
    assertEquals(
        "610000000d7368002d630065786974203300", hex(Frame.argv(List.of("sh", "-c", "exit 3"))));
    assertEquals("780000000182", hex(Frame.exit(130)));
    assertEquals("730000000102", hex(Frame.signal(2)));
    assertEquals("6300000000", hex(new Frame(Frame.STDIN_END, new byte[0])));
    assertEquals(
        "6600000003c3a9e2",
        hex(new Frame(Frame.FAILURE, new byte[] {(byte) 0xc3, (byte) 0xa9, (byte) 0xe2})));
    assertEquals("66000000026e6f", hex(Frame.failure("no")));
  }

  @Test
  void decodesWhatItEncodes() throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    Frame.argv(List.of("env", "A=é", "")).writeTo(out);
    Frame.write(out, Frame.STDOUT, "xhellox".getBytes(), 1, 5);
    Frame.exit(0).writeTo(out);
    ByteArrayInputStream in = new ByteArrayInputStream(out.toByteArray());

    Frame argv = Frame.read(in, 100);
    assertEquals(Frame.ARGV, argv.type());
    assertEquals(List.of("env", "A=é", ""), argv.arguments());
    Frame data = Frame.read(in, 100);
    assertEquals(Frame.STDOUT, data.type());
    assertArrayEquals("hello".getBytes(), data.payload());
    assertEquals(Frame.exit(0), Frame.read(in, 100));
    assertNull(Frame.read(in, 100), "end of stream between frames");
  }

  @Test
  void refusesTruncatedAndOversizedFrames() {
    assertThrows(EOFException.class, () -> Frame.read(in("6f000000"), 100));
    assertThrows(EOFException.class, () -> Frame.read(in("6f0000000568656c"), 100));
    IOException tooLong =
        assertThrows(Frame.Malformed.class, () -> Frame.read(in("6f00010000"), 100));
    assertEquals(
        "frame 'o' of 65536 bytes is longer than the limit of 100 bytes", tooLong.getMessage());
    IOException negative =
        assertThrows(Frame.Malformed.class, () -> Frame.read(in("6fffffffff"), Integer.MAX_VALUE));
    assertEquals(
        "frame 'o' of 4294967295 bytes is longer than the limit of 2147483647 bytes",
        negative.getMessage());
  }

  @Test
  void argumentsMustEndWithNul() throws IOException {
    assertEquals(List.of(), new Frame(Frame.ARGV, new byte[0]).arguments());
    IOException e =
        assertThrows(
            Frame.Malformed.class, () -> new Frame(Frame.ARGV, "ls\0-l".getBytes()).arguments());
    assertEquals("the last argument is not NUL-terminated", e.getMessage());
  }

  @Test
  void argumentsAreCounted() throws IOException {
    byte[] most = new byte[Frame.MAX_ARGUMENTS];
    assertEquals(Frame.MAX_ARGUMENTS, new Frame(Frame.ARGV, most).arguments().size());
    IOException e =
        assertThrows(
            Frame.Malformed.class,
            () -> new Frame(Frame.ARGV, new byte[Frame.MAX_ARGUMENTS + 1]).arguments());
    assertEquals("the command has more than 1048576 arguments", e.getMessage());
  }

  private static String hex(Frame frame) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    frame.writeTo(out);
    return HEX.formatHex(out.toByteArray());
  }

  private static ByteArrayInputStream in(String hex) {
    return new ByteArrayInputStream(HEX.parseHex(hex));
  }
}
