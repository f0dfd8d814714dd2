package dev.cxstream.peer;

import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;

/** Counters shared by the stream threads, and the one-time "first-record" line for the bench. */
final class Progress {
    final LongAdder processed = new LongAdder();
    final LongAdder duplicates = new LongAdder();
    final LongAdder invalid = new LongAdder();
    final LongAdder negatives = new LongAdder();
    final LongAdder timersFired = new LongAdder();
    private final AtomicBoolean started = new AtomicBoolean();

    void record() {
        processed.increment();
        if (!started.get() && started.compareAndSet(false, true)) {
            System.out.println("first-record " + System.currentTimeMillis());
            System.out.flush();
        }
    }
}
