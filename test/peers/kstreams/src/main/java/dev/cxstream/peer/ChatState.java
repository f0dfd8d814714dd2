package dev.cxstream.peer;

import java.nio.ByteBuffer;

/** One user's chat state: dedup hashes, customer messages, and the times of negative ones. */
final class ChatState {
    private static final byte VERSION = 1;
    final SeenIds seen;
    long messages;
    long[] negativeAt = new long[0];

    ChatState(int window) {
        seen = new SeenIds(window);
    }

    /** Adds a negative message at t and forgets those older than the history. */
    int addNegative(long t, long historyMs) {
        long horizon = t - historyMs;
        int keep = 0;
        for (long at : negativeAt) if (at >= horizon) keep++;
        long[] next = new long[keep + 1];
        int i = 0;
        for (long at : negativeAt) if (at >= horizon) next[i++] = at;
        next[i] = t;
        negativeAt = next;
        return next.length;
    }

    static ChatState decode(byte[] b, int window) {
        ChatState s = new ChatState(window);
        if (b == null) return s;
        ByteBuffer in = ByteBuffer.wrap(b);
        if (in.get() != VERSION) throw new IllegalStateException("unknown chat state version");
        s.seen.read(in);
        s.messages = in.getLong();
        int n = in.getInt();
        s.negativeAt = new long[n];
        for (int i = 0; i < n; i++) s.negativeAt[i] = in.getLong();
        return s;
    }

    byte[] encode() {
        ByteBuffer out = ByteBuffer.allocate(1 + seen.size() + 8 + 4 + 8 * negativeAt.length);
        out.put(VERSION);
        seen.write(out);
        out.putLong(messages).putInt(negativeAt.length);
        for (long t : negativeAt) out.putLong(t);
        return out.array();
    }
}
