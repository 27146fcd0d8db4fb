-- The scheduler: queues, tasks, their output, cron schedules. Workers are the rows of `nodes`
-- (capacity in nodes.cpus / nodes.memory_mb); a task's lease is (node_id, attempts): the node that
-- claimed it and the attempt number it claimed, which fences every later write about that run.

CREATE TABLE queues (
  name             text    PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$'),
  -- Which queued task a worker takes first, and which worker takes it (see Scheduler.POLICIES):
  -- fifo: oldest first; priority: highest priority, then oldest; least_loaded: only the node with the
  -- most free CPUs claims; locality: only nodes whose labels contain the task's labels.
  policy           text    NOT NULL DEFAULT 'fifo' CHECK (policy IN ('fifo', 'priority', 'least_loaded', 'locality')),
  concurrency      integer CHECK (concurrency > 0),        -- running tasks in the whole cluster; NULL: no limit
  node_concurrency integer CHECK (node_concurrency > 0),   -- running tasks per node; NULL: no limit
  rate_limit       integer CHECK (rate_limit > 0),         -- at most this many starts ...
  rate_period_ms   integer CHECK (rate_period_ms > 0),     -- ... per this period
  fair_share       boolean NOT NULL DEFAULT false,         -- interleave owners instead of strict order
  -- The rate limit is a token bucket kept here (claimers lock this row), so counting starts needs no index.
  rate_tokens      double precision,
  rate_refilled_at timestamptz,
  owner_id         bigint  REFERENCES principals,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((rate_limit IS NULL) = (rate_period_ms IS NULL))
);
INSERT INTO queues (name) VALUES ('default');

CREATE TABLE tasks (
  id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue          text        NOT NULL REFERENCES queues ON UPDATE CASCADE,
  owner_id       bigint      NOT NULL REFERENCES principals,
  kind           text        NOT NULL CHECK (kind IN ('process', 'function')),
  name           text        NOT NULL,                    -- the function's name, or the program
  args           jsonb       NOT NULL DEFAULT '[]',       -- process: argv after the program; function: its input
  priority       integer     NOT NULL DEFAULT 0,
  cpus           integer     NOT NULL DEFAULT 0 CHECK (cpus >= 0),
  memory_mb      bigint      NOT NULL DEFAULT 0 CHECK (memory_mb >= 0),
  labels         jsonb       NOT NULL DEFAULT '{}',       -- locality: runs only on nodes whose labels contain these
  -- waiting: for depends_on to succeed; queued: claimable once not_before has passed.
  state          text        NOT NULL CHECK (state IN ('waiting', 'queued', 'running', 'succeeded', 'failed',
                                                       'cancelled', 'timed_out')),
  attempts       integer     NOT NULL DEFAULT 0,          -- claims so far; the current run's fencing token
  max_attempts   integer     NOT NULL DEFAULT 1 CHECK (max_attempts >= 1),
  backoff_ms     integer     NOT NULL DEFAULT 1000 CHECK (backoff_ms >= 0),  -- doubles per retry
  timeout_ms     integer     CHECK (timeout_ms > 0),
  not_before     timestamptz NOT NULL DEFAULT now(),
  depends_on     bigint      REFERENCES tasks,
  cron           text,                                    -- the schedule that created it
  node_id        uuid,                                    -- the node running (or that last ran) it
  deadline_at    timestamptz,                             -- started_at + timeout of the current run
  cancel_requested boolean   NOT NULL DEFAULT false,
  exit_code      integer,
  result         jsonb,
  error          text,
  created_at     timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  finished_at    timestamptz,
  CHECK (depends_on <> id)
);
-- The claim query's indexes: queued work of a queue in policy order; partial, so they stay small. Each index
-- costs an insert on every claim and completion (state changes are never HOT), so there are few.
CREATE INDEX tasks_claimable ON tasks (queue, id) WHERE state = 'queued';                 -- fifo and the others
CREATE INDEX tasks_claimable_priority ON tasks (queue, priority DESC, id) WHERE state = 'queued'; -- priority
CREATE INDEX tasks_running ON tasks (node_id) WHERE state = 'running';
CREATE INDEX tasks_waiting ON tasks (depends_on) WHERE state = 'waiting';

-- Fair share: when each owner of a fair queue was last served, so ties go to the one waiting longest.
CREATE TABLE queue_owners (
  queue          text        NOT NULL REFERENCES queues ON DELETE CASCADE ON UPDATE CASCADE,
  owner_id       bigint      NOT NULL REFERENCES principals,
  last_served_at timestamptz NOT NULL,
  PRIMARY KEY (queue, owner_id)
);

-- stdout/stderr of process tasks, in chunks as they were read.
CREATE TABLE task_output (
  task_id bigint      NOT NULL REFERENCES tasks ON DELETE CASCADE,
  seq     bigint      GENERATED ALWAYS AS IDENTITY,
  attempt integer     NOT NULL,
  stream  text        NOT NULL CHECK (stream IN ('stdout', 'stderr')),
  data    bytea       NOT NULL,
  at      timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (task_id, seq)
);

-- A cron schedule enqueues its task at each tick; missed ticks (no node was up) run once.
CREATE TABLE cron_schedules (
  name        text        PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$'),
  owner_id    bigint      NOT NULL REFERENCES principals,
  spec        text        NOT NULL,             -- five fields: minute hour day-of-month month day-of-week
  time_zone   text        NOT NULL,
  queue       text        NOT NULL REFERENCES queues ON UPDATE CASCADE,
  kind        text        NOT NULL CHECK (kind IN ('process', 'function')),
  task_name   text        NOT NULL,
  args        jsonb       NOT NULL DEFAULT '[]',
  cpus        integer     NOT NULL DEFAULT 0 CHECK (cpus >= 0),
  memory_mb   bigint      NOT NULL DEFAULT 0 CHECK (memory_mb >= 0),
  next_run_at timestamptz NOT NULL,
  last_run_at timestamptz,
  last_task   bigint,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cron_due ON cron_schedules (next_run_at);
