package org.dbos.kernel.files;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Consumer;

/**
 * Group commit without a thread of its own: a caller queues its request and, if no group is being
 * written, takes every request queued (up to {@code max}) and writes them as one group on its own
 * thread; otherwise it waits until a runner has written its request, or until one finishes and hands
 * the queue on to it. A lone caller thus pays no hand-off between threads, and callers that arrive
 * while a group is being written share the next group's commit. Further groups are written beside
 * the first (up to {@code runners} at once) only while at least {@code extraAt} requests wait: a
 * second group of a few would only split the next one, each paying the fixed price of a commit.
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
  private final AtomicInteger queued = new AtomicInteger();
  private final AtomicInteger running = new AtomicInteger();
  private final Semaphore runners;
  private final int max;
  private final int extraAt;
  private final Consumer<List<Q>> write;

  CommitGroup(int runners, int max, int extraAt, Consumer<List<Q>> write) {
    this.runners = new Semaphore(runners);
    this.max = max;
    this.extraAt = extraAt;
    this.write = write;
  }

  /** Queues {@code q} and returns once it is answered (by this thread or another). */
  Object submit(Q q) {
    queue.add(q);
    queued.incrementAndGet();
    boolean interrupted = false;
    while (!q.answered) {
      if ((running.get() == 0 || queued.get() >= extraAt) && runners.tryAcquire()) {
        if (running.incrementAndGet() > 1 && queued.get() < extraAt) {
          // another caller began a group meanwhile: look again (not park: it may be this one's wake-up)
          running.decrementAndGet();
          runners.release();
          continue;
        }
        try {
          List<Q> group = new ArrayList<>();
          for (Q next; group.size() < max && (next = queue.poll()) != null; ) {
            group.add(next);
          }
          queued.addAndGet(-group.size());
          if (!group.isEmpty()) {
            writeAll(group);
          }
        } finally {
          running.decrementAndGet();
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
