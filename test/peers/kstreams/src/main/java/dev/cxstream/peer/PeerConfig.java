package dev.cxstream.peer;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.ArrayList;
import java.util.List;

/**
 * What `cxstream bench` hands the peer (a JSON file): where to read and write, the processing
 * guarantee, and the work's parameters, taken from the same definitions cxstream runs with.
 */
@JsonIgnoreProperties(ignoreUnknown = true)
final class PeerConfig {
    @JsonProperty("bootstrap") String bootstrap;
    @JsonProperty("application_id") String applicationId;
    /** at_least_once or exactly_once_v2. */
    @JsonProperty("guarantee") String guarantee = "at_least_once";
    @JsonProperty("clickstream_topic") String clickstreamTopic;
    @JsonProperty("chat_topic") String chatTopic;
    @JsonProperty("alerts_topic") String alertsTopic;
    @JsonProperty("state_dir") String stateDir;
    @JsonProperty("threads") int threads = 1;
    @JsonProperty("commit_interval_ms") long commitIntervalMs = 200;
    @JsonProperty("dedup_window") int dedupWindow = 64;
    @JsonProperty("allowed_lateness_ms") long allowedLatenessMs;
    @JsonProperty("negative_history_ms") long negativeHistoryMs = 14L * 24 * 3600 * 1000;
    @JsonProperty("funnels") List<Funnel> funnels = new ArrayList<>();
    @JsonProperty("negative_words") List<String> negativeWords = new ArrayList<>();
    @JsonProperty("figures_path") String figuresPath;

    @JsonIgnoreProperties(ignoreUnknown = true)
    static final class Funnel {
        @JsonProperty("name") String name;
        @JsonProperty("window_ms") long windowMs;
        /** Only "ordered" (or empty) is implemented: the bench's funnels are ordered. */
        @JsonProperty("order") String order = "";
        @JsonProperty("steps") List<Step> steps = new ArrayList<>();
    }

    @JsonIgnoreProperties(ignoreUnknown = true)
    static final class Step {
        @JsonProperty("name") String name;
        @JsonProperty("events") List<String> events = new ArrayList<>();
    }

    /** Returns the problems of this config, empty when it can run. */
    List<String> problems() {
        List<String> out = new ArrayList<>();
        if (bootstrap == null || bootstrap.isEmpty()) out.add("bootstrap is required");
        if (applicationId == null || applicationId.isEmpty()) out.add("application_id is required");
        if (!"at_least_once".equals(guarantee) && !"exactly_once_v2".equals(guarantee)) {
            out.add("guarantee must be at_least_once or exactly_once_v2, got " + guarantee);
        }
        if (clickstreamTopic == null || chatTopic == null || alertsTopic == null) out.add("clickstream_topic, chat_topic and alerts_topic are required");
        if (stateDir == null || stateDir.isEmpty()) out.add("state_dir is required");
        if (figuresPath == null || figuresPath.isEmpty()) out.add("figures_path is required");
        if (threads < 1) out.add("threads must be at least 1");
        if (dedupWindow < 1) out.add("dedup_window must be at least 1");
        if (funnels.isEmpty()) out.add("funnels must not be empty");
        for (Funnel f : funnels) {
            if (f.order != null && !f.order.isEmpty() && !f.order.equals("ordered")) out.add("funnel " + f.name + ": only ordered funnels are implemented");
            if (f.steps.size() < 2 || f.steps.size() > 31) out.add("funnel " + f.name + ": needs 2 to 31 steps");
            if (f.windowMs <= 0) out.add("funnel " + f.name + ": window_ms must be positive");
        }
        return out;
    }
}
