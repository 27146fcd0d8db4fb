package org.dbos.kernel.scheduler;

import java.sql.Connection;
import java.sql.SQLException;
import java.sql.Savepoint;
import org.dbos.kernel.Session;
import org.dbos.kernel.Tx;

/** What a running function task sees: its id, attempt, input, and the transaction its completion commits in. */
public final class TaskContext {
  private final long taskId;
  private final int attempt;
  private final String input;
  private final Connection connection;
  private final Session session;
  private final LeaseLock lease;
  private Tx tx;
  private Savepoint savepoint;

  /** Locks the run's lease in the transaction; throws if it is lost or the task was cancelled. */
  @FunctionalInterface
  interface LeaseLock {
    void lock() throws SQLException;
  }

  TaskContext(long taskId, int attempt, String input, Connection connection, Session session, LeaseLock lease) {
    this.lease = lease;
    this.taskId = taskId;
    this.attempt = attempt;
    this.input = input;
    this.connection = connection;
    this.session = session;
  }

  public long taskId() {
    return taskId;
  }

  /** 1 for the first run, 2 for the first retry, … */
  public int attempt() {
    return attempt;
  }

  /** The task's JSON input. */
  public String input() {
    return input;
  }

  /**
   * The transaction that will mark this task succeeded: work done here commits with it, or not at all.
   * Other tasks of the same batch share the transaction, each behind its own savepoint. The first call
   * locks the run's lease; if the cluster has given the task to another node meanwhile, or it was
   * cancelled, it throws and the function must let that propagate.
   */
  public Tx tx() throws SQLException {
    if (tx == null) {
      savepoint = connection.setSavepoint();
      // from here on the run's task row is locked: no other node can take it over until this commits
      lease.lock();
      tx = new Tx(connection, session, null);
    }
    return tx;
  }

  boolean usedTx() {
    return tx != null;
  }

  void release() throws SQLException {
    if (savepoint != null) {
      connection.releaseSavepoint(savepoint);
    }
  }

  void rollback() throws SQLException {
    if (savepoint != null) {
      connection.rollback(savepoint);
    }
  }
}
