package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	json "github.com/goccy/go-json"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/schemas"
)

// The tests here drive the pipeline with small processors of their own,
// a real redis-server, and a publisher that records what Kafka would have
// acknowledged.

const (
	clicks = "clicks"
	chats  = "chats"
	dead   = "dead"
	alerts = "alerts"
)

// counter counts a user's clicks and, once the user has been silent for
// a minute of event time, raises one alert; it panics on an event whose
// id starts with "boom".
type counter struct{}

type counterState struct {
	Events int   `json:"n"`
	Last   int64 `json:"last"`
	Fired  int64 `json:"fired,omitempty"`
}

func (counter) Name() string                                 { return "counter" }
func (counter) Stream() processors.Stream                    { return processors.Clicks }
func (counter) NewState() any                                { return &counterState{} }
func (counter) Describe(*processors.User, *processors.Facts) {}

func (counter) Apply(u *processors.User, ev processors.Event) processors.Effects {
	if strings.HasPrefix(ev.ID(), "boom") {
		panic("cannot count " + ev.ID())
	}
	st := u.State("counter").(*counterState)
	st.Events++
	st.Last = max(st.Last, ev.Time())
	return processors.Effects{Records: []processors.Record{{Output: "counts", Kind: "counted", Labels: []string{"counted"}, Value: map[string]any{"user": u.ID, "n": st.Events}}}}
}

func (counter) NextDue(u *processors.User) int64 {
	st := u.State("counter").(*counterState)
	if st.Last == 0 || st.Fired >= st.Last+time.Minute.Milliseconds() {
		return 0
	}
	return st.Last + time.Minute.Milliseconds()
}

func (counter) Fire(u *processors.User, at int64, _ processors.Effects) processors.Effects {
	st := u.State("counter").(*counterState)
	st.Fired = at
	return processors.Effects{Alerts: []*schemas.Alert{{Schema: schemas.AlertV2, Type: schemas.AlertChurnRisk, UserID: u.ID,
		AlertID: schemas.AlertID(schemas.AlertChurnRisk, u.ID, strconv.FormatInt(at, 10)), Priority: schemas.PriorityNormal, EventTime: at}}}
}

func (counter) RecordMetric() processors.Metric {
	return processors.Metric{Output: "counts", Name: "cx_test_counts_total", Help: "Test counts.", Labels: []string{"kind"}, Known: [][]string{{"counted"}}}
}

// echo is a chat-stream processor that counts messages (a second
// stream's document) and raises a negative-chat alert for one that says
// "angry".
type echo struct{}

type echoState struct {
	Messages int `json:"n"`
}

func (echo) Name() string                                 { return "echo" }
func (echo) Stream() processors.Stream                    { return processors.Chats }
func (echo) NewState() any                                { return &echoState{} }
func (echo) Describe(*processors.User, *processors.Facts) {}
func (echo) Apply(u *processors.User, ev processors.Event) processors.Effects {
	u.State("echo").(*echoState).Messages++
	if ev.Chat.Text != "angry" {
		return processors.Effects{}
	}
	return processors.Effects{Alerts: []*schemas.Alert{{Schema: schemas.AlertV2, Type: schemas.AlertNegativeChat, UserID: u.ID,
		ConversationID: ev.Chat.ConversationID, AlertID: schemas.AlertID(schemas.AlertNegativeChat, u.ID, ev.ID()),
		Priority: schemas.PriorityHigh, EventTime: ev.Time()}}}
}

// recorder is the Publisher: it keeps what was published and, when
// check is set, calls it first (to look at Redis at that moment).
type recorder struct {
	mu    sync.Mutex
	recs  []*kgo.Record
	check func()
	fail  error
}

func (r *recorder) Publish(_ context.Context, recs []*kgo.Record) error {
	if r.check != nil {
		r.check()
	}
	if r.fail != nil {
		return r.fail
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, recs...)
	return nil
}

func (r *recorder) on(topic string) []*kgo.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []*kgo.Record
	for _, rec := range r.recs {
		if rec.Topic == topic {
			out = append(out, rec)
		}
	}
	return out
}

type fixture struct {
	redis *testenv.Redis
	rdb   *redis.Client
	p     *pipeline.Pipeline
	pub   *recorder
	store *state.Store
	m     *metrics.Metrics
	now   time.Time
	off   map[string]int64
}

func newFixture(t *testing.T, lateness time.Duration) *fixture {
	t.Helper()
	return newFixtureWith(t, lateness, nil)
}

// newFixtureWith is newFixture with options of the test's (a support
// queue, the state cache) set by with, when not nil.
func newFixtureWith(t *testing.T, lateness time.Duration, with func(*pipeline.Options)) *fixture {
	t.Helper()
	r := testenv.StartRedis(t)
	v, err := schemas.NewValidator(0)
	testenv.Must(t, err, "validator")
	f := &fixture{redis: r, rdb: r.Client, pub: &recorder{}, store: state.New(r.Client, state.Options{Prefix: "t"}), m: metrics.New(),
		now: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC), off: map[string]int64{}}
	o := pipeline.Options{
		Topics:          pipeline.Topics{Clickstream: clicks, Chat: chats, Alerts: alerts, DeadLetter: dead, Outputs: map[string]string{"counts": "counts"}},
		Validator:       v,
		Processors:      []processors.Processor{counter{}, echo{}},
		Store:           f.store,
		Publisher:       f.pub,
		Metrics:         f.m,
		AllowedLateness: lateness,
		Now:             func() time.Time { return f.now },
	}
	if with != nil {
		with(&o)
	}
	f.p, err = pipeline.New(o)
	testenv.Must(t, err, "pipeline")
	return f
}

// click returns the next record of the clickstream's partition 0.
func (f *fixture) click(id, user string, at time.Time) *kgo.Record {
	return f.record(clicks, fmt.Sprintf(`{"event_id":%q,"user_id":%q,"type":"page_view","event_time":%d}`, id, user, at.UnixMilli()))
}

func (f *fixture) chat(id, user string, at time.Time) *kgo.Record {
	return f.chatSaying(id, user, "hello", at)
}

func (f *fixture) chatSaying(id, user, text string, at time.Time) *kgo.Record {
	return f.record(chats, fmt.Sprintf(`{"event_id":%q,"conversation_id":"c1","user_id":%q,"sender":"customer","text":%q,"event_time":%d}`, id, user, text, at.UnixMilli()))
}

func (f *fixture) record(topic, value string) *kgo.Record {
	off := f.off[topic]
	f.off[topic]++
	return &kgo.Record{Topic: topic, Partition: 0, Offset: off, Value: []byte(value)}
}

func (f *fixture) doc(t *testing.T, user string, side state.Side) map[string]json.RawMessage {
	t.Helper()
	docs, err := f.store.Load(context.Background(), []string{user})
	testenv.Must(t, err, "load")
	d := docs[user].Click
	if side == state.Chat {
		d = docs[user].Chat
	}
	out := map[string]json.RawMessage{}
	if len(d.Data) > 0 {
		data, err := pipeline.DocJSON(d.Data) // either encoding
		testenv.Must(t, err, "document as JSON")
		testenv.Must(t, json.Unmarshal(data, &out), "decode")
	}
	return out
}

func (f *fixture) counted(t *testing.T, user string) counterState {
	t.Helper()
	var st counterState
	if raw := f.doc(t, user, state.Click)["counter"]; raw != nil {
		testenv.Must(t, json.Unmarshal(raw, &st), "decode counter")
	}
	return st
}

func header(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func TestReplayedBatchIsSkippedByTheFence(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	batch := []*kgo.Record{f.click("e1", "u1", f.now), f.click("e2", "u1", f.now), f.chat("m1", "u1", f.now)}
	res, err := f.p.Process(ctx, batch)
	testenv.Must(t, err, "process")
	if res.Applied != 3 {
		t.Fatalf("applied %d, want 3", res.Applied)
	}
	// The same records again, as after a crash before the offset commit.
	res, err = f.p.Process(ctx, batch)
	testenv.Must(t, err, "replay")
	if res.Applied != 0 || res.Skipped != 3 {
		t.Fatalf("replay applied %d skipped %d, want 0 and 3", res.Applied, res.Skipped)
	}
	if got := f.counted(t, "u1").Events; got != 2 {
		t.Fatalf("counted %d clicks, want 2", got)
	}
	var chat echoState
	testenv.Must(t, json.Unmarshal(f.doc(t, "u1", state.Chat)["echo"], &chat), "chat state")
	if chat.Messages != 1 {
		t.Fatalf("chat messages %d, want 1", chat.Messages)
	}
	if n := len(f.pub.on("counts")); n != 2 {
		t.Fatalf("%d count records produced, want 2 (none on replay)", n)
	}
	if got := testutil.ToFloat64(f.m.ReplaySkipped.WithLabelValues(clicks)); got != 2 {
		t.Fatalf("replay-skipped metric %v, want 2", got)
	}
}

func TestEventSentTwiceUpstreamCountsOnce(t *testing.T) {
	f := newFixture(t, 0)
	res, err := f.p.Process(context.Background(), []*kgo.Record{f.click("e1", "u1", f.now), f.click("e1", "u1", f.now), f.click("e2", "u1", f.now)})
	testenv.Must(t, err, "process")
	if res.Applied != 2 || res.Duplicates != 1 {
		t.Fatalf("applied %d duplicates %d, want 2 and 1", res.Applied, res.Duplicates)
	}
	if got := f.counted(t, "u1").Events; got != 2 {
		t.Fatalf("counted %d, want 2", got)
	}
	if got := testutil.ToFloat64(f.m.Duplicates.WithLabelValues(clicks)); got != 1 {
		t.Fatalf("duplicate metric %v, want 1", got)
	}
}

func TestLateEventGoesToTheDeadLettersWithItsBytes(t *testing.T) {
	f := newFixture(t, time.Minute)
	first := f.click("e1", "u1", f.now)
	late := f.click("e2", "u1", f.now.Add(-2*time.Minute))
	within := f.click("e3", "u1", f.now.Add(-30*time.Second))
	res, err := f.p.Process(context.Background(), []*kgo.Record{first, late, within})
	testenv.Must(t, err, "process")
	if res.Applied != 2 || res.DeadLetters != 1 {
		t.Fatalf("applied %d dead letters %d, want 2 and 1", res.Applied, res.DeadLetters)
	}
	dl := f.pub.on(dead)
	if len(dl) != 1 || string(dl[0].Value) != string(late.Value) || header(dl[0], pipeline.HeaderReason) != "late" ||
		header(dl[0], pipeline.HeaderSourceOffset) != "1" {
		t.Fatalf("dead letters %+v", dl)
	}
	if got := f.counted(t, "u1").Events; got != 2 {
		t.Fatalf("counted %d, want 2 (the late event is not applied)", got)
	}
}

func TestEventFromTheFutureIsRejected(t *testing.T) {
	f := newFixture(t, 0)
	future := f.click("e1", "u1", f.now.Add(2*time.Hour))
	res, err := f.p.Process(context.Background(), []*kgo.Record{future, f.click("e2", "u1", f.now)})
	testenv.Must(t, err, "process")
	dl := f.pub.on(dead)
	if res.Applied != 1 || len(dl) != 1 || header(dl[0], pipeline.HeaderReason) != "future_timestamp" {
		t.Fatalf("applied %d, dead letters %+v", res.Applied, dl)
	}
	if got := testutil.ToFloat64(f.m.DeadLetters.WithLabelValues(clicks, "future_timestamp")); got != 1 {
		t.Fatalf("dead-letter metric %v, want 1", got)
	}
}

func TestPanickingProcessorDeadLettersTheEventAndTheStreamGoesOn(t *testing.T) {
	f := newFixture(t, 0)
	first := f.click("e1", "u1", f.now)
	boom := f.click("boom-1", "u1", f.now)
	res, err := f.p.Process(context.Background(), []*kgo.Record{first, boom, f.click("e2", "u1", f.now)})
	testenv.Must(t, err, "process")
	if res.Applied != 3 || res.DeadLetters != 1 {
		t.Fatalf("applied %d dead letters %d, want 3 and 1", res.Applied, res.DeadLetters)
	}
	dl := f.pub.on(dead)
	detail := header(dl[0], pipeline.HeaderDetail)
	if header(dl[0], pipeline.HeaderReason) != "processor_error" || string(dl[0].Value) != string(boom.Value) ||
		!strings.Contains(detail, "counter processor panicked: cannot count boom-1") || !strings.Contains(detail, "goroutine") {
		t.Fatalf("dead letter reason %q detail %q", header(dl[0], pipeline.HeaderReason), detail)
	}
	if got := testutil.ToFloat64(f.m.ProcessorErrors.WithLabelValues("counter")); got != 1 {
		t.Fatalf("processor errors %v, want 1", got)
	}
	if got := f.counted(t, "u1").Events; got != 2 {
		t.Fatalf("counted %d, want 2", got)
	}
	// The failed event is in the fence: a replay does not fail again.
	res, err = f.p.Process(context.Background(), []*kgo.Record{boom})
	testenv.Must(t, err, "replay")
	if res.Skipped != 1 || len(f.pub.on(dead)) != 1 {
		t.Fatalf("replay skipped %d, dead letters %d", res.Skipped, len(f.pub.on(dead)))
	}
}

func TestAlertsAreAcknowledgedBeforeStateIsWritten(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	_, err := f.p.Process(ctx, []*kgo.Record{f.click("e1", "u1", f.now)})
	testenv.Must(t, err, "process")
	// A click a minute and a half later moves the watermark past u1's
	// timer: its alert must reach Kafka before the state that records it.
	var sawUnfired bool
	f.pub.check = func() { sawUnfired = f.counted(t, "u1").Fired == 0 }
	f.pub.fail = errors.New("broker unavailable")
	later := f.click("e2", "u2", f.now.Add(90*time.Second))
	if _, err := f.p.Process(ctx, []*kgo.Record{later}); err == nil {
		t.Fatal("a failed publish must fail the batch")
	}
	if !sawUnfired || f.counted(t, "u1").Fired != 0 {
		t.Fatal("state was written before Kafka acknowledged the batch's alerts")
	}
	// The retry produces the same alert, with the same id.
	f.pub.fail = nil
	_, err = f.p.Process(ctx, []*kgo.Record{later})
	testenv.Must(t, err, "retry")
	got := f.pub.on(alerts)
	wantID := schemas.AlertID(schemas.AlertChurnRisk, "u1", strconv.FormatInt(f.now.Add(time.Minute).UnixMilli(), 10))
	if len(got) != 1 || header(got[0], pipeline.HeaderAlertID) != wantID {
		t.Fatalf("alerts %+v, want one with id %s", got, wantID)
	}
	var a schemas.Alert
	testenv.Must(t, json.Unmarshal(got[0].Value, &a), "alert")
	// Stamped with the deadline's event time, detected at the wall clock.
	if a.EventTime != f.now.Add(time.Minute).UnixMilli() || a.DetectedAt != f.now.UnixMilli() {
		t.Fatalf("alert event_time %d detected_at %d", a.EventTime, a.DetectedAt)
	}
	if st := f.counted(t, "u1"); st.Fired != f.now.Add(time.Minute).UnixMilli() {
		t.Fatalf("timer state %+v", st)
	}
}

// supportQueue is the AlertQueue: it keeps the alert ids pushed, and
// calls during (when set) inside each push.
type supportQueue struct {
	mu     sync.Mutex
	pushed []string
	during func()
	fail   error
}

func (q *supportQueue) Push(_ context.Context, alerts []*schemas.Alert) error {
	if q.during != nil {
		q.during()
	}
	if q.fail != nil {
		return q.fail
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, a := range alerts {
		q.pushed = append(q.pushed, a.AlertID)
	}
	return nil
}

func (q *supportQueue) ids() []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.pushed)
}

// echoed is the user's count of chat messages in Redis.
func (f *fixture) echoed(user string) (int, error) {
	docs, err := f.store.Load(context.Background(), []string{user})
	if err != nil || len(docs[user].Chat.Data) == 0 {
		return 0, err
	}
	data, err := pipeline.DocJSON(docs[user].Chat.Data)
	if err != nil {
		return 0, err
	}
	var doc struct {
		Echo echoState `json:"echo"`
	}
	err = json.Unmarshal(data, &doc)
	return doc.Echo.Messages, err
}

// The support queue gets a batch's negative chats while Kafka acknowledges
// the batch's alerts (the batch waits for both at once, not one after the
// other), and both come before the state write: if either fails, the
// state does not record the message, and the retry publishes and pushes
// again. A batch without negative chats does not call the queue.
func TestTheSupportQueueIsPushedWhileKafkaAcknowledgesAndBeforeTheState(t *testing.T) {
	q := &supportQueue{}
	f := newFixtureWith(t, 0, func(o *pipeline.Options) { o.Queue = q })
	ctx := context.Background()
	_, err := f.p.Process(ctx, []*kgo.Record{f.click("e1", "u1", f.now), f.chat("m1", "u1", f.now)})
	testenv.Must(t, err, "batch without a negative chat")
	if got := q.ids(); len(got) != 0 {
		t.Fatalf("queue got %v from a batch without negative chats", got)
	}

	// Each side waits (a while) for the other to start: done one after
	// the other, the first would give up.
	publishing, pushing := make(chan struct{}), make(chan struct{})
	var overlapped [2]bool
	await := func(ch chan struct{}) bool {
		select {
		case <-ch:
			return true
		case <-time.After(10 * time.Second):
			return false
		}
	}
	var echoedBefore [2]int
	var readErr [2]error
	f.pub.check = func() {
		close(publishing)
		echoedBefore[0], readErr[0] = f.echoed("u1")
		overlapped[0] = await(pushing)
	}
	q.during = func() {
		close(pushing)
		echoedBefore[1], readErr[1] = f.echoed("u1")
		overlapped[1] = await(publishing)
	}
	_, err = f.p.Process(ctx, []*kgo.Record{f.chatSaying("m2", "u1", "angry", f.now)})
	testenv.Must(t, err, "batch with a negative chat")
	testenv.Must(t, errors.Join(readErr[:]...), "read the state during the batch")
	if !overlapped[0] || !overlapped[1] {
		t.Errorf("publish saw the push in flight: %v, the push saw the publish in flight: %v; want both", overlapped[0], overlapped[1])
	}
	if echoedBefore != [2]int{1, 1} {
		t.Errorf("messages in the state during the publish / the push: %v, want the batch's not yet written", echoedBefore)
	}
	wantID := schemas.AlertID(schemas.AlertNegativeChat, "u1", "m2")
	if got := q.ids(); !slices.Equal(got, []string{wantID}) {
		t.Fatalf("queue got %v, want [%s]", got, wantID)
	}
	if n, err := f.echoed("u1"); err != nil || n != 2 {
		t.Fatalf("messages in the state after the batch: %d (%v), want 2", n, err)
	}

	// A failed push fails the batch before the state write, though Kafka
	// acknowledged; so does a failed publish though the push went
	// through. The retry does both again, with the same alert id.
	f.pub.check, q.during = nil, nil
	for _, failing := range []string{"queue", "kafka"} {
		t.Run(failing, func(t *testing.T) {
			user := "u-" + failing
			pushedBefore, published := len(q.ids()), len(f.pub.on(alerts))
			fail := errors.New(failing + " unavailable")
			if failing == "queue" {
				q.fail = fail
			} else {
				f.pub.fail = fail
			}
			rec := f.chatSaying("m-"+failing, user, "angry", f.now)
			if _, err := f.p.Process(ctx, []*kgo.Record{rec}); !errors.Is(err, fail) {
				t.Fatalf("batch error %v, want %v", err, fail)
			}
			if n, err := f.echoed(user); err != nil || n != 0 {
				t.Fatalf("the state holds %d messages (%v) though the batch failed", n, err)
			}
			q.fail, f.pub.fail = nil, nil
			_, err = f.p.Process(ctx, []*kgo.Record{rec})
			testenv.Must(t, err, "retry")
			if n, err := f.echoed(user); err != nil || n != 1 {
				t.Fatalf("after the retry the state holds %d messages (%v), want 1", n, err)
			}
			id := schemas.AlertID(schemas.AlertNegativeChat, user, "m-"+failing)
			want := []string{id}
			if failing == "kafka" {
				want = []string{id, id} // pushed with the failed publish, and again
			}
			if got := q.ids()[pushedBefore:]; !slices.Equal(got, want) {
				t.Fatalf("queue got %v, want %v", got, want)
			}
			wantPublished := 2 // with the failed push, and again
			if failing == "kafka" {
				wantPublished = 1
			}
			if got := len(f.pub.on(alerts)) - published; got != wantPublished {
				t.Fatalf("%d alerts reached Kafka, want %d", got, wantPublished)
			}
		})
	}
}

func TestTimerFiresBetweenTheRecordsThatStraddleIt(t *testing.T) {
	// u1's deadline (+1m) and u2's (+1m30s) lie between u2's two clicks.
	// As in Flink, where the watermark follows the record that raised it,
	// the click at +2m is applied first, then the timers it made due fire
	// and judge the state: u2 is no longer silent, u1 is. The same order
	// whether the records come in one batch or one at a time.
	for _, split := range [][]int{{3}, {1, 1, 1}, {2, 1}} {
		t.Run(fmt.Sprint(split), func(t *testing.T) {
			f := newFixture(t, 0)
			recs := []*kgo.Record{f.click("e1", "u1", f.now), f.click("e2", "u2", f.now.Add(30*time.Second)), f.click("e3", "u2", f.now.Add(2*time.Minute))}
			at := 0
			for _, n := range split {
				_, err := f.p.Process(context.Background(), recs[at:at+n])
				testenv.Must(t, err, "process")
				at += n
			}
			var order []string
			for _, r := range f.pub.recs {
				order = append(order, r.Topic+":"+string(r.Key))
			}
			want := "counts:u1 counts:u2 counts:u2 alerts:u1"
			if strings.Join(order, " ") != want {
				t.Fatalf("published %v, want %s", order, want)
			}
		})
	}
}

func TestProcessorsAreChecked(t *testing.T) {
	v, _ := schemas.NewValidator(0)
	r := testenv.StartRedis(t)
	base := pipeline.Options{Topics: pipeline.Topics{Clickstream: clicks, Chat: chats, Alerts: alerts, DeadLetter: dead}, Validator: v,
		Store: state.New(r.Client, state.Options{}), Publisher: &recorder{}, Metrics: metrics.New()}
	for want, procs := range map[string][]processors.Processor{
		"two processors named":           {counter{}, counter{}},
		"has timers but reads the chat":  {timedChat{}},
		"a validator and processors are": nil,
	} {
		o := base
		o.Processors = procs
		o.Metrics = metrics.New()
		if _, err := pipeline.New(o); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: got %v, want an error saying %q", procs, err, want)
		}
	}
}

// timedChat claims timers on the chat stream, which has none.
type timedChat struct{ counter }

func (timedChat) Name() string              { return "timed_chat" }
func (timedChat) Stream() processors.Stream { return processors.Chats }

// peek is a clickstream processor that records, at each click, how many
// chat messages the user's chat state holds: what a processor reading the
// other stream sees.
type peek struct{}

type peekState struct {
	Seen []int `json:"seen"`
}

func (peek) Name() string                                 { return "peek" }
func (peek) Stream() processors.Stream                    { return processors.Clicks }
func (peek) NewState() any                                { return &peekState{} }
func (peek) Describe(*processors.User, *processors.Facts) {}
func (peek) Apply(u *processors.User, _ processors.Event) processors.Effects {
	st := u.State("peek").(*peekState)
	st.Seen = append(st.Seen, u.State("echo").(*echoState).Messages)
	return processors.Effects{}
}

// The consumer hands a partition number's clicks and chats over merged, so
// one worker's batches mix chat-only, click-only and merged ones, and the
// state cache holds each user's documents under the partition of one
// stream or the other. Whatever the mix, a batch never works on a cached
// document another batch has since replaced: no conflict, every chat
// counted, and every click sees exactly the chats before it.
func TestMergedBatchesDoNotLeaveAStaleCachedDocument(t *testing.T) {
	f := newFixture(t, 0)
	v, err := schemas.NewValidator(0)
	testenv.Must(t, err, "validator")
	f.p, err = pipeline.New(pipeline.Options{
		Topics:    pipeline.Topics{Clickstream: clicks, Chat: chats, Alerts: alerts, DeadLetter: dead, Outputs: map[string]string{"counts": "counts"}},
		Validator: v, Processors: []processors.Processor{counter{}, echo{}, peek{}},
		Store: f.store, Publisher: f.pub, Metrics: f.m, Now: func() time.Time { return f.now }, CacheBytes: 1 << 20,
	})
	testenv.Must(t, err, "pipeline")
	for i, b := range [][]*kgo.Record{
		{f.click("e0", "u1", f.now)},
		{f.chat("m1", "u1", f.now)},
		{f.chat("m2", "u1", f.now)},                             // cached from its second load
		{f.click("e1", "u1", f.now), f.chat("m3", "u1", f.now)}, // likewise; the chat document is this batch's
		{f.chat("m4", "u1", f.now)},
		{f.click("e2", "u1", f.now)},
		{f.chat("m5", "u1", f.now)},
		{f.click("e3", "u1", f.now)},
		{f.click("e4", "u1", f.now), f.chat("m6", "u1", f.now)},
		{f.click("e5", "u1", f.now)},
	} {
		if _, err := f.p.Process(context.Background(), b); err != nil {
			t.Fatalf("batch %d: %v", i+1, err)
		}
	}
	if n := testutil.ToFloat64(f.m.StateConflicts); n != 0 {
		t.Errorf("%v state conflicts: a batch worked on a stale cached document", n)
	}
	var chat echoState
	testenv.Must(t, json.Unmarshal(f.doc(t, "u1", state.Chat)["echo"], &chat), "chat state")
	if chat.Messages != 6 {
		t.Errorf("the chat document counts %d messages, want 6", chat.Messages)
	}
	var seen peekState
	testenv.Must(t, json.Unmarshal(f.doc(t, "u1", state.Click)["peek"], &seen), "click state")
	if want := []int{0, 2, 4, 5, 5, 6}; !slices.Equal(seen.Seen, want) {
		t.Errorf("the clicks saw %v chat messages before them, want %v", seen.Seen, want)
	}
}

// roundTrips counts the commands and pipelines a Redis client sends.
type roundTrips struct{ n int }

func (c *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (c *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.n++
		return next(ctx, cmd)
	}
}
func (c *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.n++
		return next(ctx, cmds)
	}
}

// A batch costs two Redis round trips: one reads its users' state with
// the timers its events make due, one writes the state back with the
// timers and the watermark of the batch before. A due timer of a user not
// in the batch costs a third (that user's state). The last watermark is
// stored by the partition's next timer tick, or when it is released.
func TestABatchIsTwoRedisRoundTripsWithItsTimersAndWatermark(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	wmKey := f.store.WatermarkKey(clicks, 0)
	stored := func() int64 {
		t.Helper()
		wm, err := f.rdb.Get(ctx, wmKey).Int64()
		if errors.Is(err, redis.Nil) {
			return 0
		}
		testenv.Must(t, err, "watermark")
		return wm
	}
	_, err := f.p.Process(ctx, []*kgo.Record{f.click("e1", "u1", f.now)})
	testenv.Must(t, err, "first batch")
	if got := stored(); got != 0 {
		t.Fatalf("watermark stored with its own batch: %d", got)
	}

	rt := &roundTrips{}
	f.rdb.AddHook(rt)
	t2 := f.now.Add(10 * time.Second)
	_, err = f.p.Process(ctx, []*kgo.Record{f.click("e2", "u2", t2), f.click("e3", "u3", t2)})
	testenv.Must(t, err, "second batch")
	if rt.n != 2 {
		t.Errorf("second batch: %d Redis round trips, want 2", rt.n)
	}
	if got := stored(); got != f.now.UnixMilli() {
		t.Errorf("after the second batch the stored watermark is %d, want the first batch's %d", got, f.now.UnixMilli())
	}

	// u1's timer (+1m) comes due in a batch of u2 alone.
	rt.n = 0
	t3 := f.now.Add(65 * time.Second)
	_, err = f.p.Process(ctx, []*kgo.Record{f.click("e4", "u2", t3)})
	testenv.Must(t, err, "third batch")
	if rt.n != 3 {
		t.Errorf("batch with a due timer of another user: %d Redis round trips, want 3", rt.n)
	}
	if a := f.pub.on(alerts); len(a) != 1 || string(a[0].Key) != "u1" {
		t.Fatalf("alerts %v, want u1's", a)
	}
	if got := stored(); got != t2.UnixMilli() {
		t.Errorf("after the third batch the stored watermark is %d, want the second batch's %d", got, t2.UnixMilli())
	}

	_, err = f.p.FireTimers(ctx, clicks, 0, f.now, 0)
	testenv.Must(t, err, "tick")
	if got := stored(); got != t3.UnixMilli() {
		t.Errorf("after a tick the stored watermark is %d, want the last batch's %d", got, t3.UnixMilli())
	}
	_, err = f.p.Process(ctx, []*kgo.Record{f.click("e5", "u3", t3.Add(time.Second))})
	testenv.Must(t, err, "fourth batch")
	f.p.Release(clicks, 0)
	if got := stored(); got != t3.Add(time.Second).UnixMilli() {
		t.Errorf("after a release the stored watermark is %d, want the last batch's %d", got, t3.Add(time.Second).UnixMilli())
	}
}

// With Redis down, releasing a rebalance's partitions tries to store one
// watermark, not one per partition (each would wait for its timeout).
func TestReleaseDoesNotWaitForADownRedisOnEveryPartition(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	for p := range int32(3) {
		r := f.click(fmt.Sprintf("e%d", p), fmt.Sprintf("u%d", p), f.now)
		r.Partition = p
		_, err := f.p.Process(ctx, []*kgo.Record{r})
		testenv.Must(t, err, "process")
	}
	rt := &roundTrips{}
	f.rdb.AddHook(rt)
	f.redis.Kill()
	for p := range int32(3) {
		f.p.Release(clicks, p)
	}
	if rt.n != 1 {
		t.Fatalf("releasing 3 partitions with Redis down tried %d times, want 1", rt.n)
	}
}
