package org.uchroot.engine;

import java.util.concurrent.CompletableFuture;

/**
 * A program the engine started on the host for a client ({@link Engine#startOnHost}): the process,
 * whose stdin and stdout are the client's, and its stderr, read to its end on the engine's blocking
 * threads (the first 64 KiB of it), so that a chatty program never blocks on a full pipe.
 */
public record HostProcess(Process process, CompletableFuture<String> stderr) {}
