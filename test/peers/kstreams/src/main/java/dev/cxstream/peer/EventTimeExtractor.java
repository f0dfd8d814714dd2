package dev.cxstream.peer;

import java.nio.charset.StandardCharsets;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * Stream time is event time: the "event_time" field of cxstream's clickstream and chat JSON,
 * found by a scan rather than a parse (the processor parses the record once, later). A record
 * without one keeps the partition's time.
 */
final class EventTimeExtractor implements TimestampExtractor {
    private static final byte[] FIELD = "\"event_time\"".getBytes(StandardCharsets.US_ASCII);

    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
        if (!(record.value() instanceof byte[] v)) return partitionTime;
        int at = indexOf(v, FIELD);
        if (at < 0) return partitionTime;
        int i = at + FIELD.length;
        while (i < v.length && (v[i] == ' ' || v[i] == ':')) i++;
        long t = 0;
        int digits = 0;
        for (; i < v.length && v[i] >= '0' && v[i] <= '9' && digits < 18; i++, digits++) t = t * 10 + (v[i] - '0');
        return digits == 0 ? partitionTime : t;
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) if (hay[i + j] != needle[j]) continue outer;
            return i;
        }
        return -1;
    }
}
