package org.uchroot.engine;

import jnr.ffi.LibraryLoader;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;

/** Blocks, in the calling thread, the signals a terminal sends its foreground process group. */
final class TerminalSignals {

  private TerminalSignals() {}

  /** sigsetops(3) and pthread_sigmask(3), through jnr-ffi: the JDK has no call for these. */
  public interface LibC {
    int sigemptyset(@Out byte[] set);

    int sigaddset(@In @Out byte[] set, int signal);

    int pthread_sigmask(int how, @In byte[] set, @Out byte[] oldSet);
  }

  /** SIG_BLOCK as Linux numbers it on x86 and ARM. */
  private static final int SIG_BLOCK = 0;

  /** SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGTTIN and SIGTTOU, as Linux numbers them there. */
  private static final int[] SIGNALS = {1, 2, 3, 20, 21, 22};

  /** Throws where the C library refuses. */
  static void blockInThisThread() {
    LibC libc = LibraryLoader.create(LibC.class).load("c");
    byte[] set = new byte[128]; // glibc's sigset_t
    libc.sigemptyset(set);
    for (int signal : SIGNALS) {
      libc.sigaddset(set, signal);
    }
    if (libc.pthread_sigmask(SIG_BLOCK, set, new byte[128]) != 0) {
      throw new IllegalStateException("pthread_sigmask failed");
    }
  }
}
