package org.dbos.kernel.messages;

import java.time.Instant;

/** A received message. {@code topic} is set when it was published to a topic the mailbox subscribes to. */
public record Message(long id, String mailbox, String sender, String topic, byte[] body, Instant sentAt) {}
