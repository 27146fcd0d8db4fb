package org.dbos.kernel.node;

import java.time.Instant;
import java.util.UUID;

/** A row of the node table: one incarnation of a `dbos up` process. */
public record NodeInfo(UUID id, String host, long pid, String dataDir, int cpus, long memoryMb, String labels,
                       String httpAddress, String version, String status, Instant startedAt, Instant heartbeatAt,
                       Instant endedAt) {}
