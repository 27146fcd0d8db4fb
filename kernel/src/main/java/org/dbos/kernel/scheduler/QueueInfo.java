package org.dbos.kernel.scheduler;

/** A queue with its settings and what it holds now. */
public record QueueInfo(QueueSpec spec, long queued, long running) {}
