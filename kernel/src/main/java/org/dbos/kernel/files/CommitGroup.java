package org.dbos.kernel.files;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * Group commit without a thread of its own: a caller queues its request and, if fewer than {@code
 * runners} groups are being written, takes every request queued (up to {@code max}) and writes them
 * as one group on its own thread; otherwise it waits until a runner has written its request, or
 * until one finishes and hands the queue on to it. A lone caller thus pays no hand-off between
 * threads, and callers that arrive while a group is being written share the next group's commit.
 *
 * <p>{@code write} must answer every request of the group it is given ({@link Request#answer}); a
 * request it leaves unanswered (it threw) is answered with that exception.
 */
final class CommitGroup<Q extends CommitGroup.Request> {
  /** A caller's request: answered once, with a value or an exception. */
  abstract static class Request {
    final Thread caller = Thread.currentThread();
    volatile boolean answered;
    private Object result;
    private RuntimeException error;

    void answer(Object result) {
      this.result = result;
      answered = true;
    }

    void fail(RuntimeException e) {
      this.error = e;
      answered = true;
    }

    /** The answer: what {@link #answer} was given, or {@link #fail}'s exception thrown. */
    Object result() {
      if (error != null) {
        throw error;
      }
      return result;
    }
  }

  private final ConcurrentLinkedQueue<Q> queue = new ConcurrentLinkedQueue<>();
  private final Semaphore runners;
  private final int max;
  private final Consumer<List<Q>> write;

  CommitGroup(int runners, int max, Consumer<List<Q>> write) {
    this.runners = new Semaphore(runners);
    this.max = max;
    this.write = write;
  }

  /** Queues {@code q} and returns once it is answered (by this thread or another). */
  Object submit(Q q) {
    queue.add(q);
    boolean interrupted = false;
    while (!q.answered) {
      if (runners.tryAcquire()) {
        try {
          List<Q> group = new ArrayList<>();
          for (Q next; group.size() < max && (next = queue.poll()) != null; ) {
            group.add(next);
          }
          if (!group.isEmpty()) {
            writeAll(group);
          }
        } finally {
          runners.release();
        }
        // whoever queued while this group was written may be parked: the head of the queue runs next
        Q head = queue.peek();
        if (head != null) {
          LockSupport.unpark(head.caller);
        }
      } else {
        LockSupport.park(this);
        interrupted |= Thread.interrupted(); // a group once queued is written: finish, then restore it
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    return q.result();
  }

  private void writeAll(List<Q> group) {
    try {
      write.accept(group);
    } catch (RuntimeException e) {
      for (Q q : group) {
        if (!q.answered) {
          q.fail(e);
        }
      }
    } finally {
      for (Q q : group) {
        if (!q.answered) {
          q.fail(new IllegalStateException("a commit group left a request unanswered"));
        }
        LockSupport.unpark(q.caller);
      }
    }
  }
}
