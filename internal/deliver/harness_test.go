package deliver

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

const (
	alertTopic = "cx.alerts.v2"
	testSecret = "whsec-test"
)

// receiver is a webhook endpoint that verifies signatures and fails a
// share of requests: some with a 500 before accepting, some by accepting
// and then hanging past the sender's timeout (the worst case: the sender
// cannot know the alert arrived, and sends it again).
type receiver struct {
	t         testing.TB
	secret    []byte
	failShare float64
	hangShare float64

	mu       sync.Mutex
	rng      *rand.Rand
	requests int
	badSigs  int
	accepted []arrival            // in order of acceptance
	bodies   map[string][]byte    // by alert_id
	first    map[string]time.Time // first acceptance per id
}

type arrival struct {
	id, user string
	seq      int64
}

func newReceiver(t testing.TB, failShare, hangShare float64) (*receiver, *httptest.Server) {
	r := &receiver{t: t, secret: []byte(testSecret), failShare: failShare, hangShare: hangShare,
		rng: rand.New(rand.NewPCG(1, 2)), bodies: map[string][]byte{}, first: map[string]time.Time{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	now := time.Now()
	rc.mu.Lock()
	rc.requests++
	if Verify(rc.secret, req.Header.Get(HeaderTimestamp), req.Header.Get(HeaderSignature), body, now, DefaultTolerance) != nil {
		rc.badSigs++
		rc.mu.Unlock()
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	roll := rc.rng.Float64()
	if roll < rc.failShare {
		rc.mu.Unlock()
		http.Error(w, "try later", http.StatusInternalServerError)
		return
	}
	var a struct {
		AlertID   string `json:"alert_id"`
		UserID    string `json:"user_id"`
		EventTime int64  `json:"event_time"`
	}
	_ = json.Unmarshal(body, &a)
	if a.AlertID != req.Header.Get(HeaderAlertID) {
		rc.t.Errorf("body alert_id %q, header %q", a.AlertID, req.Header.Get(HeaderAlertID))
	}
	if prev, seen := rc.bodies[a.AlertID]; seen && string(prev) != string(body) {
		rc.t.Errorf("alert %s arrived twice with different bodies", a.AlertID)
	}
	if _, seen := rc.first[a.AlertID]; !seen {
		rc.first[a.AlertID] = now
	}
	rc.bodies[a.AlertID] = body
	if req.Header.Get(HeaderEvent) == "erasure" {
		a.UserID = "" // not part of any user's alert order
	}
	rc.accepted = append(rc.accepted, arrival{id: a.AlertID, user: a.UserID, seq: a.EventTime})
	hang := roll < rc.failShare+rc.hangShare
	rc.mu.Unlock()
	if hang {
		<-req.Context().Done() // until the sender gives up
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (rc *receiver) distinct() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.bodies)
}

// checkOrder: per user, the first arrivals of ids come in produce order.
func (rc *receiver) checkOrder(t testing.TB) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, a := range rc.accepted {
		if seen[a.id] || a.user == "" {
			continue
		}
		seen[a.id] = true
		if a.seq < last[a.user] {
			t.Errorf("user %s: alert of seq %d arrived after seq %d", a.user, a.seq, last[a.user])
		}
		last[a.user] = a.seq
	}
}

// testAlerts builds n alert.v2 records over users; a user's alerts have
// increasing event_time (their sequence), and priorities and types vary.
func testAlerts(t testing.TB, n, users int) (recs []*kgo.Record, ids []string) {
	types := []string{schemas.AlertNegativeChat, schemas.AlertChurnRisk, schemas.AlertSLABreach}
	for i := range n {
		user := fmt.Sprintf("user-%03d", i%users)
		typ := types[i%len(types)]
		a := schemas.Alert{
			Schema: schemas.AlertV2, AlertID: schemas.AlertID(typ, user, strconv.Itoa(i)), Type: typ, UserID: user,
			Priority: schemas.PriorityFromRank(i % 4), EventTime: 1_763_900_000_000 + int64(i), DetectedAt: 1_763_900_000_000 + int64(i),
			Reasons:     []schemas.AlertReason{{Code: "test", Params: map[string]any{"i": i}, Text: "test alert " + strconv.Itoa(i)}},
			RuleVersion: "test/1",
		}
		switch typ {
		case schemas.AlertNegativeChat:
			a.ConversationID, a.Sentiment, a.Excerpt = "c-"+user, new(-0.7), "call me at [phone] <@channel> & now"
		case schemas.AlertChurnRisk:
			a.ChurnProbability = new(0.8)
		case schemas.AlertSLABreach:
			a.ConversationID = "c-" + user
		}
		raw, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, &kgo.Record{Topic: alertTopic, Key: []byte(user), Value: raw,
			Headers: []kgo.RecordHeader{{Key: "cx-alert-id", Value: []byte(a.AlertID)}}})
		ids = append(ids, a.AlertID)
	}
	return recs, ids
}

func produce(t testing.TB, brokers []string, recs []*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ProducerLinger(0))
	testenv.Must(t, err, "producer")
	defer cl.Close()
	testenv.Must(t, cl.ProduceSync(context.Background(), recs...).FirstErr(), "produce")
}

// running is a Deliverer started in the background.
type running struct {
	d      *Deliverer
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startDeliverer(t testing.TB, brokers []string, o Options) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	o.KafkaOpts = append(o.KafkaOpts, kgo.SeedBrokers(brokers...), kgo.FetchMaxWait(50*time.Millisecond))
	o.Topic, o.Registry, o.FromBeginning = alertTopic, reg, true
	if o.Group == "" {
		o.Group = "deliver-test"
	}
	d, err := New(context.Background(), o)
	testenv.Must(t, err, "deliver.New")
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{d: d, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels and waits for Run, which must end within its shutdown
// timeout plus the commit and leave allowance.
func (r *running) stop(t testing.TB) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		testenv.Must(t, err, "Run")
	case <-time.After(r.d.o.ShutdownTimeout + 15*time.Second):
		t.Fatalf("Run did not return within its shutdown bound")
	}
}

func (r *running) counter(name, dest string, labels ...string) float64 {
	m := r.d.m
	switch name {
	case "delivered":
		return testutil.ToFloat64(m.Delivered.WithLabelValues(dest))
	case "retries":
		return testutil.ToFloat64(m.Retries.WithLabelValues(dest))
	case "dead":
		return testutil.ToFloat64(m.DeadLettered.WithLabelValues(dest))
	case "filtered":
		return testutil.ToFloat64(m.Filtered.WithLabelValues(dest))
	case "failures":
		return testutil.ToFloat64(m.Failures.WithLabelValues(dest, labels[0]))
	}
	panic(name)
}

// committedAll reports whether the group's committed offsets reached the
// end of every partition of the alert topic.
func committedAll(t testing.TB, brokers []string, group string) bool {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	testenv.Must(t, err, "admin client")
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, alertTopic)
	if err != nil {
		return false
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return false
	}
	ok := true
	ends.Each(func(o kadm.ListedOffset) {
		c, found := committed.Lookup(o.Topic, o.Partition)
		if o.Offset > 0 && (!found || c.At != o.Offset) {
			ok = false
		}
	})
	return ok
}
