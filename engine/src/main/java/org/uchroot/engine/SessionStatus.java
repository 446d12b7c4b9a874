package org.uchroot.engine;

import org.uchroot.actors.SessionActor;

/** A snapshot of a session: its state, how many commands run, how many interrupts it had. */
public record SessionStatus(State state, int runningJobs, int interrupts) {

  /** Where a session stands; the virt protocol's {@code status} answers its name in lower case. */
  public enum State {
    OPENING,
    OPEN,
    /** Open, after an interrupt of its commands: the testbed stays fully usable. */
    INTERRUPTED,
    REVERTING,
    CLOSING
  }

  /** The API's view of the session actor's answer, which stays the actors' own. */
  static SessionStatus of(SessionActor.Status status) {
    State state =
        switch (status.state()) {
          case OPENING -> State.OPENING;
          case OPEN -> State.OPEN;
          case INTERRUPTED -> State.INTERRUPTED;
          case REVERTING -> State.REVERTING;
          case CLOSING -> State.CLOSING;
        };
    return new SessionStatus(state, status.runningJobs(), status.interrupts());
  }
}
