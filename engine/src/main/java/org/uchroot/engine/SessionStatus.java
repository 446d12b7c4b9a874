package org.uchroot.engine;

import org.uchroot.actors.SessionActor;

/** A snapshot of a session: its state, how many commands run, how many interrupts it had. */
public record SessionStatus(SessionActor.State state, int runningJobs, int interrupts) {}
