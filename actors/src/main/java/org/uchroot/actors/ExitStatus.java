package org.uchroot.actors;

/**
 * How a command ended. Kept as a signal number rather than 128+n so that callers can tell the two
 * apart; {@link #shellStatus()} maps to the single byte the protocol wants, at the edge.
 */
public sealed interface ExitStatus {

  /** The exit status a shell would report: the code itself, or 128+n for a death by signal n. */
  int shellStatus();

  record Exited(int code) implements ExitStatus {
    public Exited {
      if (code < 0 || code > 255) {
        throw new IllegalArgumentException("exit code out of range: " + code);
      }
    }

    @Override
    public int shellStatus() {
      return code;
    }
  }

  record Signalled(int signal) implements ExitStatus {
    public Signalled {
      if (signal < 1 || signal > 127) {
        throw new IllegalArgumentException("signal out of range: " + signal);
      }
    }

    @Override
    public int shellStatus() {
      return 128 + signal;
    }
  }

  /** Reads a status byte as produced by a shell or by the job launcher (128+n means signal n). */
  static ExitStatus fromShellStatus(int status) {
    return status > 128 && status < 256 ? new Signalled(status - 128) : new Exited(status);
  }
}
