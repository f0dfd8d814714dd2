package dev.cxstream.peer;

import java.nio.ByteBuffer;

/**
 * One user's clickstream state: the hashes of the latest event ids (dedup) and the position in
 * every funnel. Stored in RocksDB in a small binary form.
 */
final class ClickState {
    static final long NO_DUE = Long.MAX_VALUE;
    private static final byte VERSION = 1;

    final SeenIds seen;
    final FunnelState[] funnels;

    static final class FunnelState {
        /** Furthest step of the open attempt, -1 when none is open. */
        int step = -1;
        long enteredAt;
        /** Event time of the user's latest event relevant to this funnel (cxstream's buffer end). */
        long lastRelevantAt;
        final int[] reached;
        int conversions;
        int abandonments;

        FunnelState(int steps) {
            reached = new int[steps];
        }

        /**
         * When the open attempt is abandoned if nothing else happens: the window's end, but not
         * before the latest relevant event is older than the allowed lateness (cxstream's
         * funnel.NextDeadline).
         */
        long due(long windowMs, long latenessMs) {
            return step < 0 ? NO_DUE : Math.max(enteredAt + windowMs, lastRelevantAt + latenessMs + 1);
        }
    }

    ClickState(int window, PeerConfig cfg) {
        seen = new SeenIds(window);
        funnels = new FunnelState[cfg.funnels.size()];
        for (int i = 0; i < funnels.length; i++) funnels[i] = new FunnelState(cfg.funnels.get(i).steps.size());
    }

    long due(PeerConfig cfg) {
        long due = NO_DUE;
        for (int i = 0; i < funnels.length; i++) due = Math.min(due, funnels[i].due(cfg.funnels.get(i).windowMs, cfg.allowedLatenessMs));
        return due;
    }

    static ClickState decode(byte[] b, PeerConfig cfg) {
        ClickState s = new ClickState(cfg.dedupWindow, cfg);
        if (b == null) return s;
        ByteBuffer in = ByteBuffer.wrap(b);
        if (in.get() != VERSION) throw new IllegalStateException("unknown click state version");
        s.seen.read(in);
        int n = in.get();
        for (int i = 0; i < n && i < s.funnels.length; i++) {
            FunnelState f = s.funnels[i];
            f.step = in.get();
            f.enteredAt = in.getLong();
            f.lastRelevantAt = in.getLong();
            int steps = in.get();
            for (int j = 0; j < steps; j++) {
                int v = in.getInt();
                if (j < f.reached.length) f.reached[j] = v;
            }
            f.conversions = in.getInt();
            f.abandonments = in.getInt();
        }
        return s;
    }

    byte[] encode() {
        int size = 1 + seen.size() + 1;
        for (FunnelState f : funnels) size += 1 + 8 + 8 + 1 + 4 * f.reached.length + 8;
        ByteBuffer out = ByteBuffer.allocate(size);
        out.put(VERSION);
        seen.write(out);
        out.put((byte) funnels.length);
        for (FunnelState f : funnels) {
            out.put((byte) f.step).putLong(f.enteredAt).putLong(f.lastRelevantAt).put((byte) f.reached.length);
            for (int v : f.reached) out.putInt(v);
            out.putInt(f.conversions).putInt(f.abandonments);
        }
        return out.array();
    }
}
