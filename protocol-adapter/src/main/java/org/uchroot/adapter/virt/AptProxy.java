package org.uchroot.adapter.virt;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.CompletionStage;
import java.util.regex.Pattern;
import org.uchroot.actors.JobStdio;
import org.uchroot.actors.OneLineMessage;
import org.uchroot.engine.Session;
import org.uchroot.engine.UchrootException;

/**
 * A caching proxy for apt in the testbeds ({@code --apt-proxy}): every testbed, when it opens and
 * after each revert, gets an apt configuration that sends its http sources through the proxy. https
 * sources go direct, uncached: a caching proxy cannot read them.
 *
 * @param url the proxy, {@code http://HOST:PORT/}
 */
public record AptProxy(String url) {

  /** Where apt reads it; written afresh, so a revert's pristine testbed gets it again. */
  public static final String CONF = "/etc/apt/apt.conf.d/01uchroot-apt-proxy";

  // What apt's configuration can quote: no quote, no whitespace, no brace or semicolon.
  private static final Pattern URL = Pattern.compile("http://[A-Za-z0-9.:\\[\\]-]+(:[0-9]+)?/?");

  // The lines come as arguments, never through the shell's parser. A testbed with no apt is left.
  private static final String WRITE =
      "[ -d /etc/apt/apt.conf.d ] || exit 0; printf '%s\\n' \"$@\" > " + CONF;

  public AptProxy {
    if (!URL.matcher(url).matches()) {
      throw new IllegalArgumentException(
          "--apt-proxy takes an http URL such as http://127.0.0.1:3142/, not " + url);
    }
  }

  /** The command, run as the testbed's root, that points its apt at the proxy. */
  List<String> command() {
    return List.of(
        "sh",
        "-c",
        WRITE,
        "sh",
        "// Written by uchroot at every open and revert (--apt-proxy).",
        "Acquire::http::Proxy \"" + url + "\";",
        "Acquire::https::Proxy \"DIRECT\";");
  }

  /** Points {@code session}'s apt at the proxy; fails with what the testbed said. */
  public CompletionStage<Void> configure(Session session) {
    ByteArrayOutputStream said = new ByteArrayOutputStream();
    return session
        .run(command(), JobStdio.of(InputStream.nullInputStream(), said, said))
        .thenAccept(
            status -> {
              if (status.shellStatus() != 0) {
                throw new UchrootException(
                    "cannot point the testbed's apt at "
                        + url
                        + " (exit status "
                        + status.shellStatus()
                        + "): "
                        + OneLineMessage.of(said.toString(StandardCharsets.UTF_8)));
              }
            });
  }
}
