/**
 * The engine: testbeds in Linux namespaces, behind an embedding API.
 *
 * <p>What an embedder uses is public, and only that: {@link org.uchroot.engine.Engine}, {@link
 * org.uchroot.engine.Session}, {@link org.uchroot.engine.Job}, {@link
 * org.uchroot.engine.EngineConfig} with {@link org.uchroot.actors.RootfsMode}, the records they
 * answer ({@link org.uchroot.engine.SessionStatus}, {@link org.uchroot.engine.HostProcess}) and
 * {@link org.uchroot.engine.UchrootException}; for the command lines, the testbeds and bases on
 * disk ({@link org.uchroot.engine.SessionRegistry}, {@link org.uchroot.engine.RootfsCache}) and the
 * facts of the host they check ({@link org.uchroot.engine.Host}, {@link
 * org.uchroot.engine.IdMapping}), and the lock under which one shared engine starts ({@link
 * org.uchroot.engine.LockFile}). {@link org.uchroot.engine.ReusingThreadPool} is public because
 * Akka makes it by name from {@code conf/uchroot.conf}.
 *
 * <p>Everything else (the provisioner, the job launcher, the teardown, the sandbox, the cache's
 * locks and unpacker, the helpers) is package-private, so the compiler keeps it out of reach: one
 * package with a narrow public surface, rather than public classes in packages named internal,
 * which any embedder could still call. docs/architecture.md walks through them.
 */
package org.uchroot.engine;
