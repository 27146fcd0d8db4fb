-- Inter-process messages: mailboxes hold rows until a receiver deletes them in its transaction, so a
-- message is delivered exactly once; topics copy each published message into every subscriber's mailbox.

CREATE TABLE mailboxes (
  name       text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_][A-Za-z0-9_./@-]{0,127}$'),
  owner_id   bigint      NOT NULL REFERENCES principals,
  task_id    bigint      REFERENCES tasks ON DELETE CASCADE,   -- owned by a task: goes with it
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE messages (
  id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  mailbox    text        NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
  sender_id  bigint      NOT NULL,
  topic      text,                                           -- set when it came through a topic
  body       bytea       NOT NULL,
  sent_at    timestamptz NOT NULL DEFAULT now()
);
-- Receive takes a mailbox's oldest rows: per sender, sequential sends arrive in order.
CREATE INDEX messages_mailbox ON messages (mailbox, id);

-- Idempotency keys outlive the messages they admitted, so a retried send after delivery is still a no-op.
CREATE TABLE message_keys (
  mailbox    text        NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
  key        text        NOT NULL,
  message_id bigint      NOT NULL,
  sent_at    timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (mailbox, key)
);

CREATE TABLE topics (
  name       text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_][A-Za-z0-9_./@-]{0,127}$'),
  owner_id   bigint      NOT NULL REFERENCES principals,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscriptions (
  topic   text NOT NULL REFERENCES topics ON DELETE CASCADE,
  mailbox text NOT NULL REFERENCES mailboxes ON DELETE CASCADE,
  PRIMARY KEY (topic, mailbox)
);
