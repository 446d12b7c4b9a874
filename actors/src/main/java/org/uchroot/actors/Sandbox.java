package org.uchroot.actors;

/**
 * The live namespaces of one session, as the provisioner made them. Opaque to the actors: only the
 * port implementations that created it look inside.
 */
public interface Sandbox {}
