package org.uchroot.adapter.protocol;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * URL quoting exactly as the reference server and its callers do it with Python's {@code
 * urllib.parse.quote} (safe {@code /}) and {@code urllib.parse.unquote}. Pure functions.
 */
public final class UrlQuoting {

  private static final char[] HEX = "0123456789ABCDEF".toCharArray();

  private UrlQuoting() {}

  /**
   * Encodes {@code text} as UTF-8 and percent-encodes every byte other than {@code A-Z a-z 0-9 _ .
   * - ~} and {@code /}, with upper-case hex digits.
   */
  public static String quote(String text) {
    StringBuilder out = new StringBuilder(text.length());
    for (byte b : text.getBytes(StandardCharsets.UTF_8)) {
      int c = b & 0xff;
      if (isSafe(c)) {
        out.append((char) c);
      } else {
        out.append('%').append(HEX[c >> 4]).append(HEX[c & 0xf]);
      }
    }
    return out.toString();
  }

  private static boolean isSafe(int c) {
    return (c >= 'A' && c <= 'Z')
        || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9')
        || c == '_'
        || c == '.'
        || c == '-'
        || c == '~'
        || c == '/';
  }

  /**
   * Replaces each {@code %XX} (either case) by its byte and decodes each run of ASCII characters
   * and such bytes as UTF-8, invalid sequences becoming U+FFFD as in Python; a {@code %} without
   * two hex digits and every non-ASCII character stay as they are.
   */
  public static String unquote(String text) {
    if (text.indexOf('%') < 0) {
      return text;
    }
    StringBuilder out = new StringBuilder(text.length());
    ByteArrayOutputStream run = new ByteArrayOutputStream();
    int i = 0;
    while (i < text.length()) {
      char c = text.charAt(i);
      if (c >= 0x80) {
        flush(run, out);
        out.append(c);
        i++;
      } else if (c == '%'
          && i + 2 < text.length()
          && hex(text.charAt(i + 1)) >= 0
          && hex(text.charAt(i + 2)) >= 0) {
        run.write(hex(text.charAt(i + 1)) << 4 | hex(text.charAt(i + 2)));
        i += 3;
      } else {
        run.write(c);
        i++;
      }
    }
    flush(run, out);
    return out.toString();
  }

  private static void flush(ByteArrayOutputStream run, StringBuilder out) {
    if (run.size() > 0) {
      decodeUtf8(run.toByteArray(), out);
      run.reset();
    }
  }

  /**
   * UTF-8 with errors replaced as Python does it: one U+FFFD for each maximal part of a sequence
   * that could have begun a valid character (the Unicode recommendation), where the JDK's decoder
   * may use one for a whole invalid sequence.
   */
  static void decodeUtf8(byte[] bytes, StringBuilder out) {
    int i = 0;
    while (i < bytes.length) {
      int lead = bytes[i] & 0xff;
      if (lead < 0x80) {
        out.append((char) lead);
        i++;
        continue;
      }
      int length;
      int low = 0x80;
      int high = 0xbf;
      if (lead >= 0xc2 && lead <= 0xdf) {
        length = 2;
      } else if (lead >= 0xe0 && lead <= 0xef) {
        length = 3;
        low = lead == 0xe0 ? 0xa0 : 0x80;
        high = lead == 0xed ? 0x9f : 0xbf;
      } else if (lead >= 0xf0 && lead <= 0xf4) {
        length = 4;
        low = lead == 0xf0 ? 0x90 : 0x80;
        high = lead == 0xf4 ? 0x8f : 0xbf;
      } else {
        out.append('\uFFFD');
        i++;
        continue;
      }
      int codePoint = lead & (0xff >> (length + 1));
      int k = 1;
      while (k < length && i + k < bytes.length) {
        int b = bytes[i + k] & 0xff;
        if (b < low || b > high) {
          break;
        }
        codePoint = codePoint << 6 | (b & 0x3f);
        low = 0x80;
        high = 0xbf;
        k++;
      }
      if (k == length) {
        out.appendCodePoint(codePoint);
      } else {
        out.append('\uFFFD');
      }
      i += k;
    }
  }

  private static int hex(char c) {
    if (c >= '0' && c <= '9') {
      return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
      return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
      return c - 'A' + 10;
    }
    return -1;
  }
}
