package org.uchroot.adapter.service;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.OptionalInt;
import org.uchroot.engine.ChannelStreams;
import org.uchroot.engine.Frame;
import org.uchroot.engine.FrameWriter;

/** A request of {@code uchroot engine} to a running engine: {@code status} or {@code stop}. */
public final class EngineRequest {

  private EngineRequest() {}

  /**
   * Sends {@code request} and prints the engine's answer; empty if no engine listens on {@code
   * socket}, else the status the engine answered with.
   */
  public static OptionalInt send(Path socket, String request, PrintWriter out, PrintWriter err)
      throws IOException {
    SocketChannel channel;
    try {
      channel = SocketChannel.open(UnixDomainSocketAddress.of(socket));
    } catch (IOException e) {
      return OptionalInt.empty();
    }
    try (channel) {
      FrameWriter writer = new FrameWriter(channel);
      writer.send(new Frame(Frame.WORKING_DIRECTORY, "/".getBytes(StandardCharsets.UTF_8)));
      writer.send(Frame.argv(List.of(request)));
      InputStream in = ChannelStreams.input(channel);
      while (true) {
        Frame frame = Frame.read(in, Frame.MAX_DATA);
        if (frame == null) {
          throw new IOException("the engine closed the connection without an answer");
        }
        switch (frame.type()) {
          case Frame.STDOUT -> {
            out.print(frame.text());
            out.flush();
          }
          case Frame.STDERR -> {
            err.print(frame.text());
            err.flush();
          }
          case Frame.EXIT -> {
            return OptionalInt.of(frame.payload()[0] & 0xff);
          }
          case Frame.FAILURE -> {
            err.println(frame.text());
            err.flush();
            return OptionalInt.of(1);
          }
          default -> throw new IOException("unexpected frame " + frame + " from the engine");
        }
      }
    }
  }
}
