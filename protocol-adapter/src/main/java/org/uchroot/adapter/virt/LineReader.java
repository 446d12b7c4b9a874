package org.uchroot.adapter.virt;

import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * Reads the protocol's lines from the caller: bytes up to {@code \n}, decoded as UTF-8 with
 * malformed bytes replaced. Only {@code \n} ends a line, as for the reference ({@code \r} is mere
 * whitespace), and a last line without a newline still counts.
 */
final class LineReader {

  private final InputStream in;

  LineReader(InputStream in) {
    this.in = new BufferedInputStream(in);
  }

  /** The next line without its newline, or null at end of file. */
  String readLine() throws IOException {
    ByteArrayOutputStream line = new ByteArrayOutputStream(128);
    int b;
    while ((b = in.read()) >= 0 && b != '\n') {
      line.write(b);
    }
    if (b < 0 && line.size() == 0) {
      return null;
    }
    return line.toString(StandardCharsets.UTF_8);
  }
}
