package org.dbos.kernel.scheduler;

/** A Java function that runs as a task; registered by name in {@link Functions}. */
@FunctionalInterface
public interface TaskFunction {
  /**
   * Runs one attempt of a task and returns its result as JSON (null for none). Database work done
   * through {@link TaskContext#tx()} commits in the same transaction that marks the task succeeded,
   * so it happens exactly once even when nodes crash; throwing rolls it back and fails the attempt
   * (retried per the task's policy).
   */
  String run(TaskContext ctx) throws Exception;
}
