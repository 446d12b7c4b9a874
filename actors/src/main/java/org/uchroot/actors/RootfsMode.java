package org.uchroot.actors;

import java.util.Locale;

/** How a testbed's files are made. */
public enum RootfsMode {
  /** A fresh upper directory over a cached, shared, read-only base: opens in milliseconds. */
  OVERLAY,
  /** The whole tarball unpacked for every testbed, as autopkgtest-virt-unshare does. */
  UNPACK;

  /**
   * {@code overlay} or {@code unpack}, in any case.
   *
   * @throws IllegalArgumentException saying which are known
   */
  public static RootfsMode parse(String text) {
    try {
      return valueOf(text.trim().toUpperCase(Locale.ROOT));
    } catch (IllegalArgumentException e) {
      throw new IllegalArgumentException("unknown rootfs mode " + text + " (overlay or unpack)", e);
    }
  }
}
