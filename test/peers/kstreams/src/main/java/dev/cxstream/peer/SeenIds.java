package dev.cxstream.peer;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/** The hashes of a user's latest event ids, oldest first, bounded: cxstream's dedup window. */
final class SeenIds {
    private final int window;
    private long[] ids = new long[0];

    SeenIds(int window) {
        this.window = window;
    }

    /** FNV-1a over the id's UTF-8 bytes, as cxstream's pipeline hashes event ids. */
    static long hash(String id) {
        long h = 0xcbf29ce484222325L;
        for (byte b : id.getBytes(StandardCharsets.UTF_8)) {
            h ^= (b & 0xff);
            h *= 0x100000001b3L;
        }
        return h;
    }

    /** Adds h and returns true, or returns false when h is already there (a duplicate). */
    boolean add(long h) {
        for (long id : ids) if (id == h) return false;
        int keep = Math.min(ids.length, window - 1);
        long[] next = new long[keep + 1];
        System.arraycopy(ids, ids.length - keep, next, 0, keep);
        next[keep] = h;
        ids = next;
        return true;
    }

    int size() {
        return 2 + 8 * ids.length;
    }

    void write(ByteBuffer out) {
        out.putShort((short) ids.length);
        for (long id : ids) out.putLong(id);
    }

    void read(ByteBuffer in) {
        int n = in.getShort();
        ids = new long[n];
        for (int i = 0; i < n; i++) ids[i] = in.getLong();
    }
}
