package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/gen"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/processors/sentiment"
	"github.com/cxstream/cxstream/schemas"
)

var (
	scorerOnce sync.Once
	scorer     *sentiment.DefaultScorer
)

func sharedScorer(t testing.TB) sentiment.Scorer {
	scorerOnce.Do(func() {
		var err error
		if scorer, err = sentiment.NewDefaultScorer(); err != nil {
			t.Fatal(err)
		}
	})
	return scorer
}

type env struct {
	kafka *testenv.Kafka
	redis *testenv.Redis
}

func newEnv(t *testing.T, extraTopics ...string) env {
	topics := append([]string{"cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1"}, extraTopics...)
	return env{kafka: testenv.StartKafka(t, 3, topics...), redis: testenv.StartRedis(t)}
}

func (e env) config(prefix, group string) config.Config {
	cfg := config.Default()
	cfg.Kafka.Brokers = e.kafka.Brokers
	cfg.Kafka.Group = group
	cfg.Redis.Addrs = []string{e.redis.Addr}
	cfg.Redis.KeyPrefix = prefix
	cfg.HTTP.Addr = "127.0.0.1:0"
	cfg.Processing.ShutdownTimeout = 5 * time.Second
	cfg.Processing.TimerInterval = 100 * time.Millisecond
	cfg.Processing.IdleAdvance = 300 * time.Millisecond
	// kfake can stall a survivor's JoinGroup for the rebalance timeout
	// (plus 10 s) when a member leaves mid-rebalance (shared/README.md):
	// keep that short so restarts in these tests settle quickly.
	cfg.Kafka.SessionTimeout = 6 * time.Second
	cfg.Kafka.RebalanceTimeout = 3 * time.Second
	return cfg
}

type running struct {
	*Processor
	cancel  context.CancelFunc
	done    chan error
	stopped sync.Once
}

func start(t *testing.T, cfg config.Config) *running {
	t.Helper()
	return startWith(t, cfg, Options{Scorer: sharedScorer(t)})
}

func startWith(t *testing.T, cfg config.Config, opts Options) *running {
	t.Helper()
	p, err := New(cfg, zap.NewNop(), opts)
	testenv.Must(t, err, "new processor")
	testenv.Must(t, p.CheckConnections(context.Background()), "connections")
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Processor: p, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- p.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	t.Helper()
	r.stopped.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("processor did not stop within 15s")
		}
	})
}

// handled counts input records that this instance finished with.
func (r *running) handled() float64 {
	return r.Metrics.Sum("cx_events_applied_total", nil) + r.Metrics.Sum("cx_events_replay_skipped_total", nil) + r.Metrics.Sum("cx_deadletter_total", nil)
}

func produce(t *testing.T, brokers []string, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	testenv.Must(t, err, "producer")
	defer cl.Close()
	testenv.Must(t, cl.ProduceSync(context.Background(), recs...).FirstErr(), "produce")
}

// readTopic reads a topic from the start until want records arrived (and
// a short while after, to catch extras) or 15 s passed.
func readTopic(t *testing.T, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testenv.Must(t, err, "consumer")
	defer cl.Close()
	var out []*kgo.Record
	next := map[int32]int64{} // per partition, the offset after the last record read
	deadline := time.Now().Add(15 * time.Second)
	var ends kadm.ListedOffsets
	for time.Now().Before(deadline) {
		if len(out) >= want && ends == nil {
			// Enough records: now read every partition up to where it
			// ends, so no partition the fetch has not reached is missed.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			ends, err = kadm.NewClient(cl).ListEndOffsets(ctx, topic)
			cancel()
			testenv.Must(t, err, "end offsets")
		}
		if ends != nil {
			done := true
			ends.Each(func(o kadm.ListedOffset) {
				if next[o.Partition] < o.Offset {
					done = false
				}
			})
			if done {
				break
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		f := cl.PollFetches(ctx)
		cancel()
		f.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			next[r.Partition] = r.Offset + 1
		})
	}
	return out
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func click(user, id, typ string, at int64, amount float64) *kgo.Record {
	ev := schemas.ClickEvent{EventID: id, UserID: user, Type: typ, EventTime: at, Amount: amount}
	if amount > 0 {
		ev.Currency = "EUR"
	}
	v, _ := json.Marshal(ev)
	return &kgo.Record{Topic: "cx.clickstream.v1", Key: []byte(user), Value: v}
}

func chat(user, id, text string, at int64) *kgo.Record {
	v, _ := json.Marshal(schemas.ChatMessage{EventID: id, ConversationID: user + "-c1", UserID: user, Sender: "customer", Text: text, EventTime: at})
	return &kgo.Record{Topic: "cx.chat.v1", Key: []byte(user), Value: v}
}

func TestEventsBecomeStateAlertsAndDeadLetters(t *testing.T) {
	e := newEnv(t)
	now := time.Now().UnixMilli() - 60_000
	garbage := []byte(`{"event_id": "x", not json`)
	produce(t, e.kafka.Brokers,
		click("alice", "a1", "product_view", now, 0),
		click("alice", "a2", "add_to_cart", now+1000, 0),
		click("alice", "a3", "checkout_start", now+2000, 0),
		click("alice", "a4", "purchase", now+3000, 49.9),
		chat("bob", "b1", "I was charged twice and nobody answers, I want a refund NOW. Card 4111 1111 1111 1111", now+4000),
		&kgo.Record{Topic: "cx.clickstream.v1", Key: []byte("mallory"), Value: garbage, Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("t-1")}}},
		click("carol", "c1", "page_view", now+5000, 0),
		click("carol", "c0", "product_view", now-3_600_000, 0), // an hour behind carol's latest: late
	)
	r := start(t, e.config("cx", "g1"))
	testenv.Eventually(t, 20*time.Second, "all 8 records handled", func() bool { return r.handled() >= 8 })

	docs, err := r.Store.Load(context.Background(), []string{"alice", "bob", "carol"})
	testenv.Must(t, err, "load state")
	var alice struct {
		Funnel map[string]struct {
			Now struct {
				Conversions int `json:"c"`
			} `json:"n"`
		} `json:"funnel"`
		Churn struct {
			Purchases int     `json:"p"`
			Spend     float64 `json:"m"`
		} `json:"churn"`
	}
	testenv.Must(t, json.Unmarshal(docJSON(t, docs["alice"].Click.Data), &alice), "alice")
	if alice.Funnel["purchase"].Now.Conversions != 1 || alice.Churn.Purchases != 1 || alice.Churn.Spend != 49.9 {
		t.Errorf("alice's state: %s", docJSON(t, docs["alice"].Click.Data))
	}
	var bob struct {
		Sentiment struct {
			Messages   int     `json:"msgs"`
			NegativeAt []int64 `json:"neg"`
		} `json:"sentiment"`
	}
	testenv.Must(t, json.Unmarshal(docJSON(t, docs["bob"].Chat.Data), &bob), "bob")
	if bob.Sentiment.Messages != 1 || len(bob.Sentiment.NegativeAt) != 1 {
		t.Errorf("bob's state: %s", docJSON(t, docs["bob"].Chat.Data))
	}
	if docs["carol"].Click.Version != 1 {
		t.Errorf("carol's event after the bad record was not applied: %+v", docs["carol"])
	}
	if ttl := e.redis.Client.PTTL(context.Background(), r.Store.Key("alice", state.Click)).Val(); ttl <= 0 {
		t.Errorf("state has no TTL: %v", ttl)
	}

	alerts := readTopic(t, e.kafka.Brokers, "cx.alerts.v2", 1)
	if len(alerts) != 1 {
		t.Fatalf("want 1 alert, got %d", len(alerts))
	}
	var a schemas.Alert
	testenv.Must(t, json.Unmarshal(alerts[0].Value, &a), "alert json")
	v, _ := schemas.NewValidator(0)
	testenv.Must(t, v.Validate(schemas.AlertV2, alerts[0].Value), "alert schema")
	if a.Type != schemas.AlertNegativeChat || a.UserID != "bob" || a.AlertID != schemas.AlertID(schemas.AlertNegativeChat, "bob", "b1") ||
		a.Source == nil || a.Source.Topic != "cx.chat.v1" || string(alerts[0].Key) != "bob" {
		t.Errorf("alert %+v", a)
	}
	if strings.Contains(a.Excerpt, "4111") || !strings.Contains(a.Excerpt, "[card]") {
		t.Errorf("excerpt not redacted: %q", a.Excerpt)
	}

	fp, _ := funnel.New(funnel.DefaultDefinitions(), 5*time.Minute)
	stats, err := report.Funnels(context.Background(), r.Store, fp)
	testenv.Must(t, err, "funnel report")
	if s := stats[0]; s.Users != 1 || s.Conversions != 1 || fmt.Sprint(s.Reached) != "[1 1 1 1]" {
		t.Errorf("funnel report %+v", s)
	}
	hour := (now + 3000) / int64(time.Hour/time.Millisecond)
	if c := stats[0].ByHour[hour]; c == nil || c.Conversions != 1 {
		t.Errorf("no conversion in hour %d of the report: %+v", hour, stats[0].ByHour)
	}

	queued, err := alertsink.NewQueue(e.redis.Client, "cx").List(context.Background(), 10)
	testenv.Must(t, err, "queue")
	if len(queued) != 1 || queued[0].Alert.AlertID != a.AlertID {
		t.Errorf("support queue holds %+v, want bob's alert", queued)
	}

	dead := readTopic(t, e.kafka.Brokers, "cx.deadletter.v1", 2)
	if len(dead) != 2 {
		t.Fatalf("want 2 dead letters, got %d", len(dead))
	}
	d, late := dead[0], dead[1]
	if string(d.Key) != "mallory" {
		d, late = late, d
	}
	if header(late, pipeline.HeaderReason) != "late" || string(late.Key) != "carol" {
		t.Errorf("late event: reason %q key %q", header(late, pipeline.HeaderReason), late.Key)
	}
	if string(d.Value) != string(garbage) || header(d, pipeline.HeaderReason) != "invalid_json" || header(d, pipeline.HeaderSourceTopic) != "cx.clickstream.v1" ||
		header(d, pipeline.HeaderSourceOffset) == "" || header(d, "trace") != "t-1" || string(d.Key) != "mallory" {
		t.Errorf("dead letter %q headers %+v", d.Value, d.Headers)
	}

	// A timer tick publishes cx_timers_pending.
	var body []byte
	testenv.Eventually(t, 10*time.Second, "timers gauge published", func() bool {
		resp, err := http.Get("http://" + r.HTTPAddr() + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ = io.ReadAll(resp.Body)
		return strings.Contains(string(body), `cx_timers_pending{partition=`)
	})
	for _, want := range []string{`cx_deadletter_total{reason="invalid_json",topic="cx.clickstream.v1"} 1`, `cx_alerts_total{priority=`, `cx_kafka_`,
		`cx_consumer_lag_records{partition=`, `cx_consumer_lag_seconds{partition=`, `cx_timers_pending{partition=`, `cx_processor_seconds_bucket{processor="sentiment"`, `cx_redis_seconds_bucket{op="load"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

// genRecords makes n deterministic records from the generator.
func genRecords(n int, users int) []*kgo.Record {
	g := gen.New(gen.Options{Users: users, Seed: 7})
	base := time.Now().Add(-2 * time.Hour)
	recs := make([]*kgo.Record, 0, n)
	for i := range n {
		ev := g.Next(base.Add(time.Duration(i) * 200 * time.Millisecond))
		topic := "cx.clickstream.v1"
		if ev.Kind == gen.Chat {
			topic = "cx.chat.v1"
		}
		recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(ev.Key), Value: ev.Value})
	}
	return recs
}

// comparable is a user's state as JSON, all of it: the consumer merges
// the two input streams by event time, so even what one stream's
// processors read of the other (churn's score and last alert) does not
// depend on how far each topic was read.
func comparable(t *testing.T, d state.UserDocs) (click, chat map[string]any) {
	t.Helper()
	if len(d.Click.Data) > 0 {
		testenv.Must(t, json.Unmarshal(docJSON(t, d.Click.Data), &click), "click doc")
	}
	if len(d.Chat.Data) > 0 {
		testenv.Must(t, json.Unmarshal(docJSON(t, d.Chat.Data), &chat), "chat doc")
	}
	return click, chat
}

func alertIDs(t *testing.T, recs []*kgo.Record, typ string) map[string]int {
	ids := map[string]int{}
	for _, r := range recs {
		var a schemas.Alert
		testenv.Must(t, json.Unmarshal(r.Value, &a), "alert")
		if a.Type == typ {
			ids[a.AlertID]++
		}
	}
	return ids
}

// A processor stopped mid-stream and restarted, once resuming from its
// commits and once replaying the whole topic from the start, ends with the
// same state and the same alerts as a run that never stopped.
func TestRestartAndFullReplayEndInTheSameState(t *testing.T) {
	e := newEnv(t, "alerts.once", "alerts.restarted")
	const n, users = 3000, 150
	produce(t, e.kafka.Brokers, genRecords(n, users)...)

	once := e.config("once", "g-once")
	once.Topics.Alerts = "alerts.once"
	r := start(t, once)
	testenv.Eventually(t, 30*time.Second, "uninterrupted run", func() bool { return r.handled() >= n })
	r.stop(t)

	restarted := e.config("restarted", "g-restarted")
	restarted.Topics.Alerts = "alerts.restarted"
	restarted.Processing.MaxPollRecords = 100
	// 1: stop after about a third.
	r = start(t, restarted)
	testenv.Eventually(t, 30*time.Second, "first third", func() bool { return r.handled() >= n/3 })
	r.stop(t)
	first := r.handled()
	// 2: same group, resumes from the committed offsets (phase 1 committed
	// all it handled on its way out); stop again after another third, or
	// what is left if phase 1 ran past two thirds before it stopped.
	r = start(t, restarted)
	second := min(float64(n/3), n-first)
	testenv.Eventually(t, 30*time.Second, "second third", func() bool { return r.handled() >= second })
	r.stop(t)
	// 3: a new group has no commits: everything is replayed from offset 0
	// over state that already holds two thirds of it.
	restarted.Kafka.Group = "g-replay"
	r = start(t, restarted)
	testenv.Eventually(t, 30*time.Second, "full replay", func() bool { return r.handled() >= n })
	skipped := r.Metrics.Sum("cx_events_replay_skipped_total", nil)
	r.stop(t)
	if skipped < float64(n)/2 {
		t.Errorf("the replay skipped only %.0f events; the fence should have skipped what phases 1 and 2 applied", skipped)
	}
	t.Logf("phase 1 handled %.0f, replay skipped %.0f of %d", first, skipped, n)

	var ids []string
	for i := range users {
		ids = append(ids, gen.UserID(i))
	}
	ctx := context.Background()
	a, err := state.New(e.redis.Client, state.Options{Prefix: "once"}).Load(ctx, ids)
	testenv.Must(t, err, "load once")
	b, err := state.New(e.redis.Client, state.Options{Prefix: "restarted"}).Load(ctx, ids)
	testenv.Must(t, err, "load restarted")
	compared := 0
	for _, id := range ids {
		ac, ah := comparable(t, a[id])
		bc, bh := comparable(t, b[id])
		if !reflect.DeepEqual(ac, bc) || !reflect.DeepEqual(ah, bh) {
			t.Errorf("user %s differs:\n once:      %s | %s\n restarted: %s | %s", id, docJSON(t, a[id].Click.Data), docJSON(t, a[id].Chat.Data), docJSON(t, b[id].Click.Data), docJSON(t, b[id].Chat.Data))
		}
		if ac != nil || ah != nil {
			compared++
		}
	}
	if compared < users*9/10 {
		t.Fatalf("only %d of %d users have state", compared, users)
	}

	onceRecs := readTopic(t, e.kafka.Brokers, "alerts.once", 1)
	restartedRecs := readTopic(t, e.kafka.Brokers, "alerts.restarted", len(onceRecs))
	for _, typ := range []string{schemas.AlertNegativeChat, schemas.AlertChurnRisk} {
		onceAlerts, restartedAlerts := alertIDs(t, onceRecs, typ), alertIDs(t, restartedRecs, typ)
		if typ == schemas.AlertNegativeChat && len(onceAlerts) < 10 {
			t.Fatalf("only %d negative-chat alerts; the generator should produce many", len(onceAlerts))
		}
		for id := range onceAlerts {
			if restartedAlerts[id] == 0 {
				t.Errorf("%s alert %s missing after restarts", typ, id)
			}
		}
		for id := range restartedAlerts {
			if onceAlerts[id] == 0 {
				t.Errorf("%s alert %s only after restarts", typ, id)
			}
		}
	}
}

// A user who reaches checkout and then sends nothing is abandoned when the
// window runs out, by a timer in Redis, exactly once; an angry user who
// then goes silent gets a churn alert from that timer alone.
func TestTimersNoticeSilentUsers(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("cx", "g-timers")
	for i := range cfg.Funnels {
		cfg.Funnels[i].Window = 2 * time.Second
	}
	cfg.Processing.TimerInterval = 100 * time.Millisecond
	cfg.Processing.AllowedLateness = 500 * time.Millisecond
	now := time.Now().UnixMilli()
	produce(t, e.kafka.Brokers,
		click("silent", "s1", "product_view", now, 0),
		click("silent", "s2", "add_to_cart", now+10, 0),
		click("silent", "s3", "checkout_start", now+20, 0),
		click("gone", "g1", "product_view", now, 0),
		click("gone", "g2", "add_to_cart", now+10, 0),
	)
	r := start(t, cfg)
	testenv.Eventually(t, 10*time.Second, "clicks applied", func() bool { return r.handled() >= 5 })
	produce(t, e.kafka.Brokers,
		chat("gone", "gm1", "this is the worst service, I want a refund", now+100),
		chat("gone", "gm2", "still not working, I am fed up", now+200),
		chat("gone", "gm3", "useless. cancel my account", now+300),
	)
	testenv.Eventually(t, 10*time.Second, "chats applied", func() bool { return r.handled() >= 8 })
	abandoned := func() float64 {
		return r.Metrics.Sum("cx_funnel_transitions_total", map[string]string{"kind": "abandoned"})
	}
	testenv.Eventually(t, 10*time.Second, "both abandonments", func() bool { return abandoned() == 2 })
	time.Sleep(time.Second) // more ticks: nothing fires twice
	if abandoned() != 2 {
		t.Fatalf("abandonments fired %v times for 2 users", abandoned())
	}
	docs, err := r.Store.Load(context.Background(), []string{"silent"})
	testenv.Must(t, err, "load")
	var silent struct {
		Funnel map[string]struct {
			Now struct {
				Step         int `json:"s"`
				Abandonments int `json:"a"`
			} `json:"n"`
		} `json:"funnel"`
	}
	testenv.Must(t, json.Unmarshal(docJSON(t, docs["silent"].Click.Data), &silent), "silent")
	if f := silent.Funnel["purchase"].Now; f.Step != -1 || f.Abandonments != 1 {
		t.Errorf("silent's funnel after the window: %+v", f)
	}

	alerts := readTopic(t, e.kafka.Brokers, "cx.alerts.v2", 2)
	churned := 0
	for _, rec := range alerts {
		var a schemas.Alert
		testenv.Must(t, json.Unmarshal(rec.Value, &a), "alert")
		if a.Type == schemas.AlertChurnRisk {
			churned++
			if a.UserID != "gone" || !strings.Contains(strings.Join(a.ReasonTexts(), ";"), "abandoned") {
				t.Errorf("churn alert %+v", a)
			}
		}
	}
	if churned != 1 {
		t.Errorf("%d churn alerts, want 1 for the user who went silent", churned)
	}
	if n, _ := r.Store.Pending(context.Background(), r.Store.TimerIndex("cx.clickstream.v1", 0)); n > 2 {
		t.Errorf("%d timers left in partition 0", n)
	}
}

// The processor on a real 3-master Redis Cluster: a user's documents share
// a slot (hash tag), pipelines span nodes, and the Lua writes, timers,
// queue, report and erasure all work.
func TestRedisCluster(t *testing.T) {
	k := testenv.StartKafka(t, 3, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	rc := testenv.StartRedisCluster(t, 3)
	cfg := config.Default()
	cfg.Kafka.Brokers = k.Brokers
	cfg.Redis.Addrs = rc.Addrs
	cfg.HTTP.Addr = ""
	const n, users = 2000, 100
	produce(t, k.Brokers, genRecords(n, users)...)
	r := start(t, cfg)
	testenv.Eventually(t, 30*time.Second, "all records", func() bool { return r.handled() >= n })

	ctx := context.Background()
	var ids []string
	for i := range users {
		ids = append(ids, gen.UserID(i))
	}
	docs, err := r.Store.Load(ctx, ids)
	testenv.Must(t, err, "load across the cluster")
	nodes := map[string]bool{}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs})
	defer cc.Close()
	withState := 0
	for _, id := range ids {
		if docs[id].Click.Version == 0 && docs[id].Chat.Version == 0 {
			continue
		}
		withState++
		a, b := r.Store.Key(id, state.Click), r.Store.Key(id, state.Chat)
		sa, _ := cc.ClusterKeySlot(ctx, a).Result()
		sb, _ := cc.ClusterKeySlot(ctx, b).Result()
		if sa != sb {
			t.Fatalf("%s and %s are in slots %d and %d", a, b, sa, sb)
		}
		master, err := cc.MasterForKey(ctx, a)
		testenv.Must(t, err, "master for key")
		nodes[master.Options().Addr] = true
	}
	if withState < users*9/10 || len(nodes) != 3 {
		t.Fatalf("%d users with state spread over %d nodes, want most users over all 3", withState, len(nodes))
	}
	fp, _ := funnel.New(funnel.DefaultDefinitions(), 5*time.Minute)
	stats, err := report.Funnels(ctx, r.Store, fp)
	testenv.Must(t, err, "report across the cluster")
	if stats[0].Users == 0 || stats[0].Reached[0] == 0 {
		t.Errorf("empty funnel report: %+v", stats[0])
	}
	if q, _ := alertsink.NewQueue(cc, "cx").Len(ctx); q == 0 {
		t.Error("no conversation in the support queue")
	}
	victim := ids[0]
	if _, err := r.Store.Forget(ctx, victim); err != nil {
		t.Fatal(err)
	}
	if n := cc.Exists(ctx, r.Store.Key(victim, state.Click), r.Store.Key(victim, state.Chat)).Val(); n != 0 {
		t.Errorf("%d keys of %s left after forget", n, victim)
	}
}
