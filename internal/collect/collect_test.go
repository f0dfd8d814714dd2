package collect

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	analytics "gopkg.in/segmentio/analytics-go.v3"

	"github.com/cxstream/cxstream/internal/ingest"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

const (
	clickTopic = "cx.clickstream.v1"
	chatTopic  = "cx.chat.v1"
	writeKey   = "wk-test"
)

type fixture struct {
	kafka    *testenv.Kafka
	producer *kgo.Client
	c        *Collector
	srv      *httptest.Server
	reg      *prometheus.Registry
}

type fixtureOpts struct {
	links          *Links
	produceTimeout time.Duration
	chat           ingest.Input
	maxBody        int
}

func newFixture(t testing.TB, fo fixtureOpts) *fixture {
	t.Helper()
	k := testenv.StartKafka(t, 3, clickTopic, chatTopic)
	producer, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ProducerLinger(0), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	testenv.Must(t, err, "producer")
	t.Cleanup(producer.Close)
	v, err := schemas.NewValidator(0)
	testenv.Must(t, err, "validator")
	reg := prometheus.NewRegistry()
	c, err := New(Options{
		ClickTopic: clickTopic, ChatTopic: chatTopic, Producer: producer, Validator: v, WriteKeys: []string{"other-key", writeKey},
		Links: fo.links, Chat: fo.chat, Vocabulary: schemas.NewVocabulary(map[schemas.Role][]string{schemas.RoleLogin: {"Signed In"}}, schemas.PurchaseFields{}), ProduceTimeout: fo.produceTimeout, MaxBodyBytes: fo.maxBody, Registry: reg,
	})
	testenv.Must(t, err, "collector")
	srv := httptest.NewServer(c)
	t.Cleanup(srv.Close)
	return &fixture{kafka: k, producer: producer, c: c, srv: srv, reg: reg}
}

// segmentClient is the real Segment Go library pointed at the collector.
func (f *fixture) segmentClient(t testing.TB, cb analytics.Callback) analytics.Client {
	t.Helper()
	cl, err := analytics.NewWithConfig(writeKey, analytics.Config{
		Endpoint: f.srv.URL, BatchSize: 50, Interval: 20 * time.Millisecond, Callback: cb,
		RetryAfter: func(int) time.Duration { return 100 * time.Millisecond },
		Logger:     analytics.StdLogger(log.New(io.Discard, "", 0)),
	})
	testenv.Must(t, err, "segment client")
	return cl
}

// callbacks records what the Segment client reports.
type callbacks struct {
	mu        sync.Mutex
	succeeded []string
	failed    int
}

func (c *callbacks) Success(m analytics.Message) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch x := m.(type) {
	case analytics.Track:
		c.succeeded = append(c.succeeded, x.MessageId)
	case analytics.Page:
		c.succeeded = append(c.succeeded, x.MessageId)
	case analytics.Identify:
		c.succeeded = append(c.succeeded, x.MessageId)
	}
}

func (c *callbacks) Failure(analytics.Message, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failed++
}

func (c *callbacks) counts() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.succeeded), c.failed
}

// readAll reads a topic from the start until want records arrived and a
// short while passed without more, or 15 s.
func readAll(t testing.TB, brokers []string, topic string, want int) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testenv.Must(t, err, "consumer")
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(15 * time.Second)
	var settle time.Time
	for time.Now().Before(deadline) {
		if len(out) >= want && settle.IsZero() {
			settle = time.Now().Add(300 * time.Millisecond)
		}
		if !settle.IsZero() && time.Now().After(settle) {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		out = append(out, cl.PollFetches(ctx).Records()...)
		cancel()
	}
	return out
}

func decodeAll(t testing.TB, recs []*kgo.Record) map[string]schemas.ClickEvent {
	t.Helper()
	v, _ := schemas.NewValidator(0)
	out := map[string]schemas.ClickEvent{}
	for _, r := range recs {
		ev, err := v.DecodeClick(r.Value)
		if err != nil {
			t.Fatalf("the collector produced an invalid record %s: %v", r.Value, err)
		}
		if string(r.Key) != ev.UserID {
			t.Errorf("record keyed %q holds user %q", r.Key, ev.UserID)
		}
		out[ev.EventID] = ev
	}
	return out
}

func TestSegmentLibraryEventsBecomeRecords(t *testing.T) {
	f := newFixture(t, fixtureOpts{})
	cb := &callbacks{}
	cl := f.segmentClient(t, cb)
	at := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
	testenv.Must(t, cl.Enqueue(analytics.Page{MessageId: "m-1", UserId: "u-1", Name: "Home", Timestamp: at, Properties: analytics.NewProperties().SetPath("/home")}), "page")
	testenv.Must(t, cl.Enqueue(analytics.Track{MessageId: "m-2", UserId: "u-1", Event: "Product Viewed", Timestamp: at.Add(time.Second),
		Properties: analytics.NewProperties().Set("product_id", "p-9").Set("price", 12.5)}), "track")
	testenv.Must(t, cl.Enqueue(analytics.Track{MessageId: "m-3", UserId: "u-1", Event: "Order Completed", Timestamp: at.Add(2 * time.Second),
		Properties: analytics.NewProperties().SetRevenue(30.5).SetCurrency("EUR")}), "order")
	testenv.Must(t, cl.Enqueue(analytics.Track{MessageId: "m-4", AnonymousId: "anon-7", Event: "Product Viewed", Timestamp: at.Add(3 * time.Second)}), "anonymous")
	testenv.Must(t, cl.Close(), "close (flush)")
	if ok, failed := cb.counts(); ok != 4 || failed != 0 {
		t.Fatalf("client reports %d sent, %d failed", ok, failed)
	}

	evs := decodeAll(t, readAll(t, f.kafka.Brokers, clickTopic, 4))
	if len(evs) != 4 {
		t.Fatalf("want 4 records, got %d: %+v", len(evs), evs)
	}
	if e := evs["m-1"]; e.Type != schemas.ClickPageView || e.Page != "/home" || e.UserID != "u-1" || e.EventTime != at.UnixMilli() {
		t.Errorf("page: %+v", e)
	}
	if e := evs["m-2"]; e.Type != "Product Viewed" || e.ItemID != "p-9" || e.Properties["price"] != 12.5 {
		t.Errorf("track: %+v", e)
	}
	if e := evs["m-3"]; e.Type != "Order Completed" || e.Amount != 30.5 || e.Currency != "EUR" {
		t.Errorf("order: %+v", e)
	}
	if e := evs["m-4"]; e.UserID != "anon-7" {
		t.Errorf("anonymous: %+v", e)
	}
	if got := testutil.ToFloat64(f.c.m.events.WithLabelValues("clickstream")); got != 4 {
		t.Errorf("cx_collect_events_total{stream=clickstream} = %v", got)
	}
}

func post(t testing.TB, url, key string, body []byte, gz bool) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if key != "" {
		req.SetBasicAuth(key, "")
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	testenv.Must(t, err, "post")
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return buf.Bytes()
}

func TestBadCallsAreAnsweredAndNothingIsProduced(t *testing.T) {
	f := newFixture(t, fixtureOpts{maxBody: 64 << 10, chat: ingest.Input{Format: ingest.FormatMapping, Mapping: &ingest.Mapping{
		Fields: map[string]string{"conversation_id": "conv", "user_id": "contact", "sender": "role", "text": "body", "event_time": "created"},
		Values: map[string]map[string]string{"sender": {"user": "customer", "admin": "agent"}}, TimeFormat: "epoch_s",
	}}})
	ts := time.Now().UTC().Format(time.RFC3339)
	good := `{"type":"track","event":"Signed In","messageId":"g-1","userId":"u","timestamp":"` + ts + `"}`
	cases := []struct {
		name, path, key string
		body            []byte
		gz              bool
		code            int
		says            string
	}{
		{"no key", "/v1/track", "", []byte(good), false, 401, "write key"},
		{"wrong key", "/v1/track", "nope", []byte(good), false, 401, "write key"},
		{"no user", "/v1/track", writeKey, []byte(`{"event":"X","messageId":"b-1","timestamp":"` + ts + `"}`), false, 400, "userId"},
		{"bad time", "/v1/track", writeKey, []byte(`{"event":"X","userId":"u","timestamp":"MARKER"}`), false, 400, "timestamp"},
		{"not json", "/v1/track", writeKey, []byte(`{"event":`), false, 400, "unexpected end of JSON input"},
		{"wrong endpoint", "/v1/page", writeKey, []byte(good), false, 400, "type"},
		{"one bad call spoils the batch", "/v1/batch", writeKey, []byte(`{"batch":[` + good + `,{"type":"track","event":"X","messageId":"b-2","anonymousId":"a","timestamp":"` + ts + `","properties":{"revenue":"lots"}}]}`), false, 400, "batch[1]: segment: format_violation: properties.revenue"},
		{"empty batch", "/v1/batch", writeKey, []byte(`{"batch":[]}`), false, 400, "batch"},
		{"bad gzip", "/v1/track", writeKey, []byte(good), true, 400, "gzip"},
		{"too large", "/v1/batch", writeKey, []byte(`{"batch":[` + strings.Repeat(good+",", 1000) + good + `]}`), false, 413, "limit"},
		{"gzip bomb", "/v1/batch", writeKey, gzipped([]byte(`{"batch":[` + strings.Repeat(" ", 10<<20) + `]}`)), true, 413, "limit"},
		{"chat sender unknown", "/v1/chat", writeKey, []byte(`{"conv":"c","contact":"u","role":"visitor","body":"MARKER","created":1763900000}`), false, 400, "/sender"},
	}
	for _, c := range cases {
		code, body := post(t, f.srv.URL+c.path, c.key, c.body, c.gz)
		if code != c.code || !strings.Contains(body, c.says) || strings.Contains(body, "MARKER") {
			t.Errorf("%s: %d %s, want %d naming %q", c.name, code, body, c.code, c.says)
		}
	}
	if recs := readAll(t, f.kafka.Brokers, clickTopic, 0); len(recs) != 0 {
		t.Fatalf("bad calls produced %d records", len(recs))
	}
	if got := testutil.ToFloat64(f.c.m.requests.WithLabelValues("batch", "400")); got != 2 {
		t.Errorf("cx_collect_requests_total{batch,400} = %v", got)
	}

	// The same good call, plain and gzipped, and a chat message: produced.
	if code, body := post(t, f.srv.URL+"/v1/track", writeKey, gzipped([]byte(good)), true); code != 200 {
		t.Fatalf("gzipped good call: %d %s", code, body)
	}
	if code, body := post(t, f.srv.URL+"/v1/chat", writeKey, []byte(`{"conv":"c","contact":"u","role":"user","body":"hello","created":1763900000}`), false); code != 200 {
		t.Fatalf("chat: %d %s", code, body)
	}
	if recs := readAll(t, f.kafka.Brokers, clickTopic, 1); len(recs) != 1 || string(recs[0].Key) != "u" {
		t.Fatalf("good call: %d records", len(recs))
	}
	chats := readAll(t, f.kafka.Brokers, chatTopic, 1)
	v, _ := schemas.NewValidator(0)
	if len(chats) != 1 {
		t.Fatalf("chat records: %d", len(chats))
	}
	if m, err := v.DecodeChat(chats[0].Value); err != nil || m.Sender != "customer" || m.EventID == "" || string(chats[0].Key) != "u" {
		t.Fatalf("chat record %s: %v", chats[0].Value, err)
	}
}

// brokerDown makes the kfake broker drop every connection while down is
// set, as a stopped broker would.
func brokerDown(k *testenv.Kafka, down *atomic.Bool) {
	k.Cluster.ControlKey(-1, func(kmsg.Request) (kmsg.Response, error, bool) {
		k.Cluster.KeepControl()
		if down.Load() {
			return nil, fmt.Errorf("broker stopped"), true
		}
		return nil, nil, false
	})
}

func TestKafkaDownAnswers503AndRetriesLandOnce(t *testing.T) {
	f := newFixture(t, fixtureOpts{produceTimeout: 500 * time.Millisecond})
	var down atomic.Bool
	brokerDown(f.kafka, &down)
	down.Store(true)

	cb := &callbacks{}
	cl := f.segmentClient(t, cb)
	at := time.Now().Add(-time.Minute)
	for i := range 3 {
		testenv.Must(t, cl.Enqueue(analytics.Track{MessageId: fmt.Sprintf("r-%d", i), UserId: "u-retry", Event: "Order Completed", Timestamp: at.Add(time.Duration(i) * time.Second),
			Properties: analytics.NewProperties().SetRevenue(10).SetCurrency("EUR")}), "enqueue")
	}
	unavailable := f.c.m.requests.WithLabelValues("batch", "503")
	testenv.Eventually(t, 20*time.Second, "a 503 while the broker is down", func() bool { return testutil.ToFloat64(unavailable) >= 1 })
	down.Store(false)
	// Closing the client stops its retries: wait for them first.
	testenv.Eventually(t, 20*time.Second, "the client's retries to succeed", func() bool { ok, failed := cb.counts(); return ok == 3 || failed > 0 })
	testenv.Must(t, cl.Close(), "close")
	if ok, failed := cb.counts(); ok != 3 || failed != 0 {
		t.Fatalf("client reports %d sent, %d failed", ok, failed)
	}
	recs := readAll(t, f.kafka.Brokers, clickTopic, 3)
	ids := map[string]int{}
	for _, r := range recs {
		var ev schemas.ClickEvent
		testenv.Must(t, json.Unmarshal(r.Value, &ev), "record")
		ids[ev.EventID]++
	}
	// A request that timed out may still have reached the log: what
	// matters is that every copy carries the message id, so the
	// processor's dedup counts it once (TestRetriedCallsCountOnce).
	if len(ids) != 3 || ids["r-0"] == 0 || ids["r-1"] == 0 || ids["r-2"] == 0 {
		t.Fatalf("event ids on the topic: %v", ids)
	}
	t.Logf("records on the topic after the outage: %d for 3 messages (%v)", len(recs), ids)
}

func TestIdentityLinksKeyLaterEventsByUser(t *testing.T) {
	r := testenv.StartRedis(t)
	links := NewLinks(r.Client, "cx", time.Hour, privacy.NewPseudonymizer(""))
	f := newFixture(t, fixtureOpts{links: links})
	ts := func(s int) string {
		return time.Now().Add(time.Duration(s-60) * time.Second).UTC().Format(time.RFC3339Nano)
	}
	send := func(body string) {
		t.Helper()
		if code, out := post(t, f.srv.URL+"/v1/batch", writeKey, []byte(body), false); code != 200 {
			t.Fatalf("%d %s", code, out)
		}
	}
	send(`{"batch":[{"type":"track","event":"Product Viewed","messageId":"i-1","anonymousId":"anon-1","timestamp":"` + ts(0) + `"}]}`)
	send(`{"batch":[{"type":"identify","messageId":"i-2","anonymousId":"anon-1","userId":"user-1","timestamp":"` + ts(1) + `"},
		{"type":"track","event":"Product Added","messageId":"i-3","anonymousId":"anon-1","timestamp":"` + ts(2) + `"}]}`)
	send(`{"batch":[{"type":"track","event":"Checkout Started","messageId":"i-4","anonymousId":"anon-1","timestamp":"` + ts(3) + `"},
		{"type":"track","event":"Signed In","messageId":"i-5","anonymousId":"anon-2","userId":"user-2","timestamp":"` + ts(4) + `"},
		{"type":"track","event":"Product Viewed","messageId":"i-6","anonymousId":"anon-2","timestamp":"` + ts(5) + `"},
		{"type":"track","event":"Product Viewed","messageId":"i-7","anonymousId":"anon-3","userId":"user-3","timestamp":"` + ts(6) + `"},
		{"type":"track","event":"Product Viewed","messageId":"i-8","anonymousId":"anon-3","timestamp":"` + ts(7) + `"},
		{"type":"group","groupId":"g-1","userId":"user-2","timestamp":"` + ts(7) + `"},
		{"type":"alias","previousId":"anon-4","userId":"user-4","timestamp":"` + ts(7) + `"},
		{"type":"track","event":"Product Viewed","messageId":"i-10","anonymousId":"anon-4","timestamp":"` + ts(7) + `"}]}`)
	evs := decodeAll(t, readAll(t, f.kafka.Brokers, clickTopic, 9))
	want := map[string]string{"i-1": "anon-1", "i-2": "user-1", "i-3": "user-1", "i-4": "user-1", "i-5": "user-2", "i-6": "user-2", "i-7": "user-3", "i-8": "anon-3", "i-10": "user-4"}
	if len(evs) != 9 {
		t.Errorf("want 9 records (alias and group produce none), got %d", len(evs))
	}
	if got := testutil.ToFloat64(f.c.m.ignored); got != 1 {
		t.Errorf("cx_collect_ignored_total = %v, want the group call", got)
	}
	for id, user := range want {
		if evs[id].UserID != user {
			t.Errorf("%s keyed by %q, want %q (history before a link stays under the anonymous id; only identify and login/signup link)", id, evs[id].UserID, user)
		}
	}
	if ttl := r.Client.PTTL(context.Background(), "cx:idlink:{anon-1}").Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("link TTL %v, want the state TTL", ttl)
	}

	n, anons, err := links.Forget(context.Background(), "user-1")
	testenv.Must(t, err, "forget")
	if n != 2 || len(anons) != 1 {
		t.Errorf("forget deleted %d keys (want the link and the reverse set) and returned %d anonymous ids (want 1)", n, len(anons))
	}
	send(`{"batch":[{"type":"track","event":"Product Viewed","messageId":"i-9","anonymousId":"anon-1","timestamp":"` + ts(8) + `"}]}`)
	evs = decodeAll(t, readAll(t, f.kafka.Brokers, clickTopic, 10))
	if evs["i-9"].UserID != "anon-1" {
		t.Errorf("after forget, the anonymous id is still linked: %+v", evs["i-9"])
	}
	if keys := r.Client.Keys(context.Background(), "cx:idlink*{user-1}*").Val(); len(keys) != 0 {
		t.Errorf("left after forget: %v", keys)
	}
}

func TestRedisDownAnswers503(t *testing.T) {
	r := testenv.StartRedis(t)
	links := NewLinks(r.Client, "cx", time.Hour, nil)
	f := newFixture(t, fixtureOpts{links: links})
	r.Kill()
	code, body := post(t, f.srv.URL+"/v1/track", writeKey, []byte(`{"event":"X","anonymousId":"a","messageId":"x"}`), false)
	if code != 503 || !strings.Contains(body, "retry") {
		t.Fatalf("%d %s", code, body)
	}
}
