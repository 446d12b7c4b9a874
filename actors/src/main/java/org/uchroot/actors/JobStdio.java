package org.uchroot.actors;

import java.io.InputStream;
import java.io.OutputStream;

/**
 * Where a command's standard streams come from and go to. The launcher pumps them on its own
 * threads; the actors only carry this object from the requester to the launcher.
 */
public interface JobStdio {
  InputStream stdin();

  OutputStream stdout();

  OutputStream stderr();
}
