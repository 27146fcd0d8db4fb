package org.dbos.kernel.scheduler;

import java.time.Instant;

/** A piece of a process task's stdout or stderr, in the order it was read ({@code seq}). */
public record OutputChunk(long seq, int attempt, String stream, byte[] data, Instant at) {}
