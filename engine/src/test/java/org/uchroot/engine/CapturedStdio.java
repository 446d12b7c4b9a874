package org.uchroot.engine;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import org.uchroot.actors.JobStdio;

/** Streams for a job in a test: fixed stdin, captured stdout and stderr. */
public final class CapturedStdio implements JobStdio {
  private final InputStream in;
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();

  public CapturedStdio(String stdin) {
    this.in = new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8));
  }

  public CapturedStdio() {
    this("");
  }

  @Override
  public InputStream stdin() {
    return in;
  }

  @Override
  public synchronized OutputStream stdout() {
    return out;
  }

  @Override
  public synchronized OutputStream stderr() {
    return err;
  }

  public String out() {
    synchronized (out) {
      return out.toString(StandardCharsets.UTF_8);
    }
  }

  public String err() {
    synchronized (err) {
      return err.toString(StandardCharsets.UTF_8);
    }
  }
}
