package org.uchroot.adapter.virt;

/**
 * What a caller's signals act on: the commands of its testbed for SIGINT, the testbed itself for
 * SIGTERM and SIGHUP. Each of the first two returns its line for stderr.
 */
public interface SignalTarget {

  /** Interrupts the running commands; the testbed stays open. */
  String interruptCommands();

  /** Kills the running commands at once; the testbed stays open. */
  String killCommands();

  /** Closes the testbed, for a caller that is to die of its signal; blocks until it is removed. */
  void terminate();
}
