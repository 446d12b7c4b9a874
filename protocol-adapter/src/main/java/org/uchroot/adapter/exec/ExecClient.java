package org.uchroot.adapter.exec;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.FileDescriptor;
import java.io.FileInputStream;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.PrintStream;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.uchroot.engine.UchrootException;
import sun.misc.Signal;

/**
 * The exec client in Java, for hosts without a C compiler: {@code uchroot exec SOCKET CMD...}
 * behaves as {@code libexec/uchroot-exec}. It relays stdin, stdout and stderr, passes on SIGINT,
 * SIGTERM and SIGHUP as {@link Frame#SIGNAL} frames instead of dying of them, and ends with the
 * command's status, or 255 after printing {@code uchroot-exec: WHY} when it cannot.
 */
public final class ExecClient {

  /** The status of the client's own failures, as the protocol's callers expect. */
  public static final int FAILED = 255;

  private static final List<String> FORWARDED_SIGNALS = List.of("INT", "TERM", "HUP");

  private final OutputStream stdout = new FileOutputStream(FileDescriptor.out);
  private final OutputStream stderr = new FileOutputStream(FileDescriptor.err);
  private final PrintStream messages = new PrintStream(stderr, true, StandardCharsets.UTF_8);
  private final List<Frame> early = new ArrayList<>();
  private OutputStream toServer;
  private boolean serverGone;

  private ExecClient() {}

  /**
   * Runs {@code args} = SOCKET CMD [ARGS...] to its end and returns the status to exit with.
   * Blocks; a thread it leaves behind still reads stdin, so the caller exits the JVM with the
   * status.
   */
  public static int run(List<String> args) {
    return new ExecClient().runCommand(args);
  }

  private int runCommand(List<String> args) {
    if (args.size() < 2) {
      return fail("usage: uchroot-exec SOCKET CMD [ARGS...]");
    }
    // Caught before connecting, so that an early ^C is relayed rather than fatal.
    for (String name : FORWARDED_SIGNALS) {
      Signal.handle(new Signal(name), signal -> send(Frame.signal(signal.getNumber())));
    }
    SocketChannel channel;
    try {
      channel = SocketChannel.open(StandardProtocolFamily.UNIX);
      channel.connect(UnixDomainSocketAddress.of(Path.of(args.get(0))));
    } catch (IOException | RuntimeException e) {
      return fail("cannot connect to " + args.get(0) + ": " + UchrootException.reason(e));
    }
    connected(
        new BufferedOutputStream(ChannelStreams.output(channel), Frame.MAX_DATA + 5),
        Frame.argv(args.subList(1, args.size())));
    Thread pump = new Thread(this::relayStdin, "uchroot-exec-stdin");
    pump.setDaemon(true);
    pump.start();
    return relayOutput(new BufferedInputStream(ChannelStreams.input(channel)));
  }

  private void relayStdin() {
    InputStream stdin = new FileInputStream(FileDescriptor.in);
    byte[] buffer = new byte[Frame.MAX_DATA];
    try {
      int n;
      while ((n = stdin.read(buffer)) >= 0) {
        if (n > 0) {
          send(Frame.STDIN, buffer, n);
        }
      }
    } catch (IOException e) {
      // A closed or write-only stdin is an empty one.
    }
    send(new Frame(Frame.STDIN_END, new byte[0]));
  }

  private int relayOutput(InputStream fromServer) {
    boolean stdoutBroken = false;
    boolean stderrBroken = false;
    while (true) {
      Frame frame;
      try {
        frame = Frame.read(fromServer, Integer.MAX_VALUE - 8);
      } catch (IOException e) {
        return fail("connection to the testbed was lost");
      }
      if (frame == null) {
        return fail("connection to the testbed was lost");
      }
      byte[] data = frame.payload();
      switch (frame.type()) {
        case Frame.STDOUT -> stdoutBroken = stdoutBroken || !writeAll(stdout, data);
        case Frame.STDERR -> stderrBroken = stderrBroken || !writeAll(stderr, data);
        case Frame.EXIT -> {
          if (data.length != 1) {
            return fail("protocol error from the testbed");
          }
          return data[0] & 0xff;
        }
        case Frame.FAILURE -> {
          return fail(frame.text());
        }
        default -> {
          return fail("protocol error from the testbed");
        }
      }
    }
  }

  private static boolean writeAll(OutputStream out, byte[] data) {
    try {
      out.write(data);
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /** Sends the command first, then the signals that came while connecting. */
  private synchronized void connected(OutputStream out, Frame argv) {
    toServer = out;
    // A refusal here is not fatal yet: the server may have said why in a failure frame.
    send(argv);
    early.forEach(this::send);
    early.clear();
  }

  private void send(Frame frame) {
    send(frame.type(), frame.payload(), frame.payload().length);
  }

  /** Once the server stops reading, what would go to it is dropped, as the native client does. */
  private synchronized void send(byte type, byte[] data, int length) {
    if (toServer == null) {
      early.add(new Frame(type, Arrays.copyOf(data, length)));
      return;
    }
    if (serverGone) {
      return;
    }
    try {
      Frame.write(toServer, type, data, 0, length);
      toServer.flush();
    } catch (IOException e) {
      serverGone = true;
    }
  }

  private int fail(String message) {
    messages.println("uchroot-exec: " + message);
    return FAILED;
  }
}
