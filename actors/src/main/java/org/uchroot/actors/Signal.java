package org.uchroot.actors;

/** The signals an interrupt escalates through, in order; numbers as on Linux. */
public enum Signal {
  HUP(1),
  INT(2),
  TERM(15),
  KILL(9);

  private final int number;

  Signal(int number) {
    this.number = number;
  }

  public int number() {
    return number;
  }
}
