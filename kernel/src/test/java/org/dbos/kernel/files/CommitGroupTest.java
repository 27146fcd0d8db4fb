package org.dbos.kernel.files;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The group commit's hand-offs: every request answered with its own answer, groups one at a time. */
class CommitGroupTest {
  static final class Ask extends CommitGroup.Request {
    final int n;

    Ask(int n) {
      this.n = n;
    }
  }

  /** Group sizes and the most groups written at once when 8 threads make 200 requests each. */
  record Run(List<Integer> sizes, int most) {}

  static Run run(int runners, int extraAt) throws Exception {
    var sizes = new CopyOnWriteArrayList<Integer>();
    var writing = new AtomicInteger();
    var most = new AtomicInteger();
    var group = new CommitGroup<Ask>(runners, 16, extraAt, asks -> {
      most.accumulateAndGet(writing.incrementAndGet(), Math::max);
      try {
        Thread.sleep(1); // a commit's wait: others queue meanwhile
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
      sizes.add(asks.size());
      asks.forEach(a -> a.answer(a.n * 2));
      writing.decrementAndGet();
    });
    int threads = 8;
    int each = 200;
    var start = new CyclicBarrier(threads);
    ExecutorService pool = Executors.newFixedThreadPool(threads);
    try {
      var done = new ArrayList<Future<?>>();
      for (int t = 0; t < threads; t++) {
        int base = t * each;
        done.add(pool.submit(() -> {
          start.await();
          for (int i = base; i < base + each; i++) {
            assertEquals(i * 2, group.submit(new Ask(i)));
          }
          return null;
        }));
      }
      for (Future<?> f : done) {
        f.get();
      }
    } finally {
      pool.shutdownNow();
    }
    assertEquals(threads * each, sizes.stream().mapToInt(Integer::intValue).sum());
    assertTrue(sizes.size() < threads * each / 2, "callers shared groups: " + sizes.size() + " groups");
    assertTrue(sizes.stream().allMatch(n -> n <= 16), sizes::toString);
    return new Run(sizes, most.get());
  }

  @Test
  void concurrentCallersShareGroupsAndEachGetsItsOwnAnswer() throws Exception {
    assertEquals(1, run(1, 1).most(), "one runner: one group at a time");
  }

  @Test
  void aSecondGroupIsWrittenBesideTheFirstOnlyWhileEnoughWait() throws Exception {
    assertEquals(1, run(2, 100).most(), "never 100 waiting: one group at a time");
    assertEquals(2, run(2, 2).most(), "often 2 waiting: two groups at once");
  }

  @Test
  void aLoneCallerWritesItsOwnGroupOnItsOwnThread() {
    var threads = new ArrayList<Thread>();
    var group = new CommitGroup<Ask>(1, 16, 1, asks -> {
      threads.add(Thread.currentThread());
      asks.forEach(a -> a.answer("done " + a.n));
    });
    assertEquals("done 7", group.submit(new Ask(7)));
    assertEquals(List.of(Thread.currentThread()), threads);
  }

  @Test
  void aWriteThatThrowsFailsItsUnansweredRequests() {
    var boom = new IllegalStateException("boom");
    var group = new CommitGroup<Ask>(1, 16, 1, asks -> {
      throw boom;
    });
    assertSame(boom, assertThrows(IllegalStateException.class, () -> group.submit(new Ask(1))));
    var forgetful = new CommitGroup<Ask>(1, 16, 1, asks -> {});
    assertThrows(IllegalStateException.class, () -> forgetful.submit(new Ask(2)));
  }

  /** Waits until {@code t} is parked (the only wait in CommitGroup.submit) with its interrupt flag clear. */
  static void awaitParked(Thread t) {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (t.getState() != Thread.State.WAITING || t.isInterrupted()) {
      assertTrue(System.nanoTime() < deadline, "the caller never waited: " + t.getState());
      Thread.onSpinWait();
    }
  }

  @Test
  void anInterruptedCallerStillGetsItsAnswerAndKeepsTheInterrupt() throws Exception {
    var release = new CyclicBarrier(2);
    var group = new CommitGroup<Ask>(1, 16, 1, asks -> {
      if (asks.getFirst().n == 1) {
        try {
          release.await(); // the first group holds the writer while the second caller queues
          release.await();
        } catch (Exception e) {
          throw new IllegalStateException(e);
        }
      }
      asks.forEach(a -> a.answer(a.n));
    });
    Thread first = new Thread(() -> group.submit(new Ask(1)));
    first.start();
    release.await();
    var answer = new AtomicInteger();
    var kept = new AtomicInteger();
    Thread second = new Thread(() -> {
      answer.set((Integer) group.submit(new Ask(2)));
      kept.set(Thread.currentThread().isInterrupted() ? 1 : 0);
    });
    second.start();
    awaitParked(second); // queued behind the first group
    second.interrupt();
    awaitParked(second); // woken by the interrupt, and parked again: its request is still queued
    release.await();
    first.join(5000);
    second.join(5000);
    assertEquals(List.of(2, 1), List.of(answer.get(), kept.get()));
  }
}
