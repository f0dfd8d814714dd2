package dev.cxstream.peer;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.processor.PunctuationType;
import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.processor.api.RecordMetadata;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The per-user work, one instance per task (a partition of both input topics): dedup by event
 * id, the ordered funnels with their windows, abandonment by a stream-time punctuator, and a
 * rolling count of negative customer chats with an alert for each.
 *
 * <p>Funnel semantics follow cxstream's processors/funnel for ordered funnels fed in event-time
 * order (the bench's data): an event matching no step is ignored; a matching event at or after
 * the window's end abandons the open attempt first; the first step opens an attempt, the next
 * step advances it, the last converts it. A timer abandons an open attempt once the partition's
 * click watermark (latest click time less the allowed lateness) reaches
 * max(entry + window, latest relevant event + lateness + 1), as cxstream's timers do.
 */
final class PeerProcessor implements Processor<String, byte[], String, byte[]> {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final byte[] NOTHING = new byte[0];

    private final PeerConfig cfg;
    private final Progress progress;
    private final List<Map<String, Integer>> matches = new ArrayList<>();
    private final String[] words;
    private ProcessorContext<String, byte[]> ctx;
    private KeyValueStore<String, byte[]> clicks;
    private KeyValueStore<String, byte[]> chats;
    private KeyValueStore<Bytes, byte[]> timers;
    private long clickWatermark = Long.MIN_VALUE;
    /** Earliest stored timer (NO_DUE: none), so a punctuation with nothing due costs nothing. */
    private long minDue = ClickState.NO_DUE;

    PeerProcessor(PeerConfig cfg, Progress progress) {
        this.cfg = cfg;
        this.progress = progress;
        for (PeerConfig.Funnel f : cfg.funnels) {
            Map<String, Integer> m = new java.util.HashMap<>();
            for (int i = 0; i < f.steps.size(); i++) {
                for (String ev : f.steps.get(i).events) m.merge(ev, 1 << i, (a, b) -> a | b);
            }
            matches.add(m);
        }
        words = cfg.negativeWords.stream().map(w -> w.toLowerCase(Locale.ROOT)).toArray(String[]::new);
    }

    @Override
    public void init(ProcessorContext<String, byte[]> context) {
        ctx = context;
        clicks = context.getStateStore(Main.CLICK_STORE);
        chats = context.getStateStore(Main.CHAT_STORE);
        timers = context.getStateStore(Main.TIMER_STORE);
        minDue = firstDue();
        // Every advance of stream time (event time) runs the punctuator; it acts only when the
        // click watermark reaches the earliest timer.
        context.schedule(Duration.ofMillis(1), PunctuationType.STREAM_TIME, t -> fireDue());
    }

    @Override
    public void process(Record<String, byte[]> record) {
        progress.record();
        String topic = ctx.recordMetadata().map(RecordMetadata::topic).orElse("");
        try {
            if (topic.equals(cfg.clickstreamTopic)) {
                click(record);
            } else {
                chat(record);
            }
        } catch (IOException | RuntimeException e) {
            // Bad input never stops the stream: counted, and the record is passed over.
            progress.invalid.increment();
        }
    }

    @JsonIgnoreProperties(ignoreUnknown = true)
    static final class Click {
        @JsonProperty("event_id") String eventId;
        @JsonProperty("user_id") String userId;
        @JsonProperty("type") String type;
        @JsonProperty("event_time") long eventTime;
    }

    @JsonIgnoreProperties(ignoreUnknown = true)
    static final class Chat {
        @JsonProperty("event_id") String eventId;
        @JsonProperty("user_id") String userId;
        @JsonProperty("conversation_id") String conversationId;
        @JsonProperty("sender") String sender;
        @JsonProperty("text") String text;
        @JsonProperty("event_time") long eventTime;
    }

    private void click(Record<String, byte[]> record) throws IOException {
        Click ev = JSON.readValue(record.value(), Click.class);
        if (ev.eventId == null || ev.userId == null || ev.type == null || ev.eventTime <= 0) {
            progress.invalid.increment();
            return;
        }
        clickWatermark = Math.max(clickWatermark, ev.eventTime - cfg.allowedLatenessMs);
        ClickState s = ClickState.decode(clicks.get(ev.userId), cfg);
        if (!s.seen.add(SeenIds.hash(ev.eventId))) {
            progress.duplicates.increment();
            return;
        }
        long before = s.due(cfg);
        for (int i = 0; i < s.funnels.length; i++) {
            Integer m = matches.get(i).get(ev.type);
            if (m != null) apply(cfg.funnels.get(i), s.funnels[i], m, ev.eventTime);
        }
        reschedule(ev.userId, before, s.due(cfg));
        clicks.put(ev.userId, s.encode());
    }

    private static void apply(PeerConfig.Funnel d, ClickState.FunnelState f, int m, long at) {
        f.lastRelevantAt = Math.max(f.lastRelevantAt, at);
        if (f.step >= 0 && at >= f.enteredAt + d.windowMs) abandon(f);
        if (f.step < 0) {
            if ((m & 1) != 0) {
                f.step = 0;
                f.enteredAt = at;
                f.reached[0]++;
            }
            return;
        }
        if ((m & (1 << (f.step + 1))) == 0) return;
        f.step++;
        f.reached[f.step]++;
        if (f.step == f.reached.length - 1) {
            f.conversions++;
            f.step = -1;
            f.enteredAt = 0;
        }
    }

    private static void abandon(ClickState.FunnelState f) {
        f.abandonments++;
        f.step = -1;
        f.enteredAt = 0;
    }

    private void reschedule(String user, long before, long after) {
        if (before == after) return;
        if (before != ClickState.NO_DUE) timers.delete(timerKey(before, user));
        if (after != ClickState.NO_DUE) {
            timers.put(timerKey(after, user), NOTHING);
            minDue = Math.min(minDue, after);
        }
    }

    /**
     * Fires every timer the click watermark has reached, earliest first. The scan starts at the
     * earliest live timer, not at the store's start: fired timers leave RocksDB tombstones there
     * until compaction, and a queue read from its head would step over all of them every time.
     */
    private void fireDue() {
        if (clickWatermark < minDue) return;
        List<KeyValue<Long, String>> due = new ArrayList<>();
        long next = ClickState.NO_DUE;
        try (KeyValueIterator<Bytes, byte[]> it = timers.range(timerKey(minDue, ""), timerKey(Long.MAX_VALUE, ""))) {
            while (it.hasNext()) {
                ByteBuffer k = ByteBuffer.wrap(it.next().key.get());
                long at = k.getLong();
                if (at > clickWatermark) {
                    next = at;
                    break;
                }
                byte[] user = new byte[k.remaining()];
                k.get(user);
                due.add(KeyValue.pair(at, new String(user, StandardCharsets.UTF_8)));
            }
        }
        for (KeyValue<Long, String> d : due) {
            timers.delete(timerKey(d.key, d.value));
            ClickState s = ClickState.decode(clicks.get(d.value), cfg);
            if (s.due(cfg) != d.key) continue; // stale: the state moved on
            for (int i = 0; i < s.funnels.length; i++) {
                ClickState.FunnelState f = s.funnels[i];
                if (f.due(cfg.funnels.get(i).windowMs, cfg.allowedLatenessMs) <= d.key) abandon(f);
            }
            progress.timersFired.increment();
            long again = s.due(cfg);
            if (again != ClickState.NO_DUE) {
                timers.put(timerKey(again, d.value), NOTHING);
                next = Math.min(next, again);
            }
            clicks.put(d.value, s.encode());
        }
        minDue = next;
    }

    private long firstDue() {
        try (KeyValueIterator<Bytes, byte[]> it = timers.all()) {
            return it.hasNext() ? ByteBuffer.wrap(it.next().key.get()).getLong() : ClickState.NO_DUE;
        }
    }

    /** Big-endian due time then the user: the store's byte order is deadline order. */
    private static Bytes timerKey(long due, String user) {
        byte[] u = user.getBytes(StandardCharsets.UTF_8);
        return Bytes.wrap(ByteBuffer.allocate(8 + u.length).putLong(due).put(u).array());
    }

    private void chat(Record<String, byte[]> record) throws IOException {
        Chat m = JSON.readValue(record.value(), Chat.class);
        if (m.eventId == null || m.userId == null || m.sender == null || m.text == null || m.eventTime <= 0) {
            progress.invalid.increment();
            return;
        }
        ChatState s = ChatState.decode(chats.get(m.userId), cfg.dedupWindow);
        if (!s.seen.add(SeenIds.hash(m.eventId))) {
            progress.duplicates.increment();
            return;
        }
        byte[] alert = null;
        if ("customer".equals(m.sender)) {
            s.messages++;
            if (negative(m.text)) {
                int recent = s.addNegative(m.eventTime, cfg.negativeHistoryMs);
                progress.negatives.increment();
                Map<String, Object> a = new LinkedHashMap<>();
                a.put("type", "negative_chat");
                a.put("user_id", m.userId);
                a.put("conversation_id", m.conversationId);
                a.put("event_id", m.eventId);
                a.put("negative_chats", recent);
                a.put("event_time", m.eventTime);
                alert = JSON.writeValueAsBytes(a);
            }
        }
        chats.put(m.userId, s.encode());
        if (alert != null) ctx.forward(new Record<>(m.userId, alert, record.timestamp()));
    }

    /** The bench's trivial scorer: negative when the text holds a listed word (any case). */
    private boolean negative(String text) {
        String t = text.toLowerCase(Locale.ROOT);
        for (String w : words) if (t.contains(w)) return true;
        return false;
    }
}
