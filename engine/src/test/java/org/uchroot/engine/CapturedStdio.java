package org.uchroot.engine;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Optional;
import org.uchroot.actors.JobStdio;

/** Streams for a job in a test: fixed stdin, captured stdout and stderr. */
public final class CapturedStdio implements JobStdio {
  private final InputStream in;
  private final ByteArrayOutputStream out = new ByteArrayOutputStream();
  private final ByteArrayOutputStream err = new ByteArrayOutputStream();
  private Optional<Path> stdinFile = Optional.empty();
  private Optional<Path> stdoutFile = Optional.empty();

  public CapturedStdio(String stdin) {
    this.in = new ByteArrayInputStream(stdin.getBytes(StandardCharsets.UTF_8));
  }

  public CapturedStdio() {
    this("");
  }

  /** Stdin and stdout that are host files, read and written by the command itself. */
  public static CapturedStdio withHostFiles(Path stdin, Path stdout) {
    CapturedStdio io = new CapturedStdio("relayed stdin\n");
    io.stdinFile = Optional.ofNullable(stdin);
    io.stdoutFile = Optional.ofNullable(stdout);
    return io;
  }

  @Override
  public Optional<Path> stdinFile() {
    return stdinFile;
  }

  @Override
  public Optional<Path> stdoutFile() {
    return stdoutFile;
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
