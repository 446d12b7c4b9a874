package org.uchroot.adapter.cli;

import java.util.Optional;

/**
 * The class data archive this JVM was started with, as the launch script chose it ({@code
 * bin/uchroot}, which alone knows where archives are kept and when one is made), with its reason.
 *
 * @param path the archive in use, if any
 * @param note which archive, or why there is none
 */
record ClassDataArchive(Optional<String> path, String note) {

  /** What the launch script passed; a JVM started otherwise has none of its archives. */
  static ClassDataArchive ofThisJvm() {
    String path = System.getProperty("uchroot.class-archive");
    if (path == null) {
      return new ClassDataArchive(Optional.empty(), "none: not started by uchroot's launch script");
    }
    return new ClassDataArchive(
        path.isEmpty() ? Optional.empty() : Optional.of(path),
        System.getProperty("uchroot.class-archive.note", ""));
  }

  @Override
  public String toString() {
    return path.map(p -> p + " (" + note + ")").orElse(note);
  }
}
