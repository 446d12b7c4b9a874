package org.uchroot.actors;

import java.util.Objects;

/** One command of a session, numbered from 1 in the order the session accepted them. */
public record JobId(SessionId session, long sequence) {
  public JobId {
    Objects.requireNonNull(session, "session");
  }

  @Override
  public String toString() {
    return session + "/" + sequence;
  }
}
