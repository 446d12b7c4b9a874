package org.uchroot.engine;

import jnr.ffi.LibraryLoader;
import jnr.ffi.annotations.In;
import jnr.ffi.annotations.Out;

/** Blocks, in the calling thread, the signals a terminal sends its foreground process group. */
final class TerminalSignals {

  private TerminalSignals() {}

  /** pthread_sigmask(3), through jnr-ffi: the JDK has no call for a thread's signal mask. */
  public interface LibC {
    int pthread_sigmask(int how, @In byte[] set, @Out byte[] oldSet);
  }

  private static final int SIG_BLOCK = 0;
  /** SIGHUP, SIGINT, SIGQUIT, SIGTSTP, SIGTTIN and SIGTTOU, as Linux numbers them. */
  private static final int[] SIGNALS = {1, 2, 3, 20, 21, 22};

  static void blockInThisThread() {
    byte[] set = new byte[128]; // the kernel's sigset_t and more, as glibc's is
    for (int signal : SIGNALS) {
      set[(signal - 1) / 8] |= (byte) (1 << ((signal - 1) % 8));
    }
    LibC libc = LibraryLoader.create(LibC.class).load("c");
    if (libc.pthread_sigmask(SIG_BLOCK, set, new byte[128]) != 0) {
      throw new IllegalStateException("pthread_sigmask failed");
    }
  }
}
