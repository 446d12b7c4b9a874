package org.uchroot.actors;

import java.util.Objects;

/** Names one testbed session within an engine; also used in log lines and state files. */
public record SessionId(String value) {
  public SessionId {
    Objects.requireNonNull(value, "value");
    if (value.isBlank()) {
      throw new IllegalArgumentException("session id must not be blank");
    }
  }

  @Override
  public String toString() {
    return value;
  }
}
