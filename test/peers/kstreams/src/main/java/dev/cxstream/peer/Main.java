package dev.cxstream.peer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueIterator;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;
import org.apache.kafka.streams.state.Stores;

/**
 * The Kafka Streams peer of cxstream's benchmark. Usage: Main CONFIG.json.
 *
 * <p>It prints "first-record EPOCH_MS" once the first record is processed (the bench starts its
 * clock there, as it does for cxstream) and, on SIGTERM, writes the funnel figures read from its
 * state stores to figures_path before it closes.
 */
public final class Main {
    static final String CLICK_STORE = "click-state";
    static final String CHAT_STORE = "chat-state";
    static final String TIMER_STORE = "funnel-timers";

    public static void main(String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: Main CONFIG.json");
            System.exit(2);
        }
        ObjectMapper json = new ObjectMapper();
        PeerConfig cfg = json.readValue(new File(args[0]), PeerConfig.class);
        List<String> problems = cfg.problems();
        if (!problems.isEmpty()) {
            problems.forEach(p -> System.err.println("config: " + p));
            System.exit(2);
        }
        Progress progress = new Progress();
        KafkaStreams streams = new KafkaStreams(topology(cfg, progress).build(), properties(cfg));
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("stream thread failed: " + e);
            return StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                writeFigures(cfg, streams, progress, json);
            } catch (Exception e) {
                System.err.println("figures: " + e);
            } finally {
                streams.close(Duration.ofSeconds(30));
                stopped.countDown();
            }
        }));
        streams.start();
        stopped.await();
    }

    static Properties properties(PeerConfig cfg) {
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, cfg.applicationId);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, cfg.bootstrap);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, cfg.guarantee);
        p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, cfg.threads);
        // Both guarantees commit as often as cxstream does (the bench passes cxstream's
        // processing.commit_interval): the end of a bench run is "every offset committed".
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, cfg.commitIntervalMs);
        p.put(StreamsConfig.STATE_DIR_CONFIG, cfg.stateDir);
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        return p;
    }

    static StreamsBuilder topology(PeerConfig cfg, Progress progress) {
        StreamsBuilder b = new StreamsBuilder();
        // RocksDB (the default persistent store) with a changelog topic each, and the record
        // cache in front, as Kafka Streams ships.
        b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(CLICK_STORE), Serdes.String(), Serdes.ByteArray()));
        b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(CHAT_STORE), Serdes.String(), Serdes.ByteArray()));
        b.addStateStore(Stores.keyValueStoreBuilder(Stores.persistentKeyValueStore(TIMER_STORE), Serdes.Bytes(), Serdes.ByteArray()));
        b.stream(List.of(cfg.clickstreamTopic, cfg.chatTopic), Consumed.with(Serdes.String(), Serdes.ByteArray()).withTimestampExtractor(new EventTimeExtractor()))
            .process(() -> new PeerProcessor(cfg, progress), CLICK_STORE, CHAT_STORE, TIMER_STORE)
            .to(cfg.alertsTopic, Produced.with(Serdes.String(), Serdes.ByteArray()));
        return b;
    }

    /** Sums every user's funnel state, as `cxstream funnel` does over Redis. */
    static void writeFigures(PeerConfig cfg, KafkaStreams streams, Progress progress, ObjectMapper json) throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("guarantee", cfg.guarantee);
        out.put("state", streams.state().toString());
        out.put("processed", progress.processed.sum());
        out.put("duplicates", progress.duplicates.sum());
        out.put("invalid", progress.invalid.sum());
        out.put("negative_chats", progress.negatives.sum());
        out.put("timers_fired", progress.timersFired.sum());
        int n = cfg.funnels.size();
        long[][] reached = new long[n][];
        long[] conversions = new long[n], abandonments = new long[n], users = new long[n];
        for (int i = 0; i < n; i++) reached[i] = new long[cfg.funnels.get(i).steps.size()];
        if (streams.state() == KafkaStreams.State.RUNNING) {
            ReadOnlyKeyValueStore<String, byte[]> store = streams.store(StoreQueryParameters.fromNameAndType(CLICK_STORE, QueryableStoreTypes.keyValueStore()));
            try (KeyValueIterator<String, byte[]> it = store.all()) {
                while (it.hasNext()) {
                    KeyValue<String, byte[]> kv = it.next();
                    ClickState s = ClickState.decode(kv.value, cfg);
                    for (int i = 0; i < n; i++) {
                        ClickState.FunnelState f = s.funnels[i];
                        if (f.reached[0] == 0 && f.step < 0) continue;
                        users[i]++;
                        for (int j = 0; j < f.reached.length; j++) reached[i][j] += f.reached[j];
                        conversions[i] += f.conversions;
                        abandonments[i] += f.abandonments;
                    }
                }
            }
        }
        List<Map<String, Object>> funnels = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            Map<String, Object> f = new LinkedHashMap<>();
            PeerConfig.Funnel d = cfg.funnels.get(i);
            f.put("name", d.name);
            List<String> steps = new ArrayList<>();
            d.steps.forEach(s -> steps.add(s.name));
            f.put("steps", steps);
            f.put("users", users[i]);
            f.put("entries", reached[i][0]);
            f.put("reached", reached[i]);
            f.put("conversions", conversions[i]);
            f.put("abandonments", abandonments[i]);
            funnels.add(f);
        }
        out.put("funnels", funnels);
        Path tmp = Path.of(cfg.figuresPath + ".tmp");
        Files.write(tmp, json.enable(SerializationFeature.INDENT_OUTPUT).writeValueAsBytes(out));
        Files.move(tmp, Path.of(cfg.figuresPath), java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        System.out.println("figures " + cfg.figuresPath);
        System.out.flush();
    }
}
