// Package pipeline turns a batch of input records from one partition into
// durable state and alerts.
//
// For each batch it decodes and validates every record (invalid ones become
// dead letters), loads the state of the batch's users in one Redis round
// trip, applies the processors in offset order, produces the alerts and
// dead letters and waits for Kafka to acknowledge them, and only then
// writes the state back in one round trip. The caller commits the offsets
// after Process returns nil.
//
// Exactly-once effect on state comes from a fence inside each user's
// document: the last offset applied per input partition. A replayed event
// (after a crash, before the commit) is skipped for every user whose state
// already contains it. Alerts are produced before the state is written, so
// a crash in between re-produces them on replay with the same alert_id.
package pipeline

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	json "github.com/goccy/go-json"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/ingest"
	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/processors/sentiment"
	"github.com/cxstream/cxstream/schemas"
)

// Topics names the topics the pipeline reads and writes.
type Topics struct {
	Clickstream string `yaml:"clickstream"`
	Chat        string `yaml:"chat"`
	// Alerts receives alert.v2 messages.
	Alerts string `yaml:"alerts"`
	// AlertsV1, when set, also receives every alert as alert.v1, for
	// subscribers that have not moved to v2 yet (deprecated; see
	// schemas/COMPATIBILITY.md).
	AlertsV1   string `yaml:"alerts_v1"`
	DeadLetter string `yaml:"deadletter"`
	// Transitions, when set, receives every funnel transition.
	Transitions string `yaml:"transitions"`
	// Input says how the input topics' records are written (default:
	// cxstream's own messages).
	Input ingest.Inputs `yaml:"input"`
}

// DefaultTopics are the topic names cxstream uses unless configured.
func DefaultTopics() Topics {
	return Topics{Clickstream: "cx.clickstream.v1", Chat: "cx.chat.v1", Alerts: "cx.alerts.v2", DeadLetter: "cx.deadletter.v1"}
}

// Publisher produces records and returns once Kafka has acknowledged all
// of them.
type Publisher interface {
	Publish(ctx context.Context, recs []*kgo.Record) error
}

// AlertQueue receives negative-chat alerts for the support priority queue
// (alertsink.Queue); pushing the same alert twice changes nothing.
type AlertQueue interface {
	Push(ctx context.Context, alerts []*schemas.Alert) error
}

// Reasons for dead letters that the pipeline adds to the schema's own.
const (
	ReasonFutureTimestamp schemas.Reason = "future_timestamp"
	ReasonUnknownTopic    schemas.Reason = "unknown_topic"
	ReasonProcessorError  schemas.Reason = "processor_error" // a processor panicked or failed on the event
	ReasonLate            schemas.Reason = "late"
)

// DeadLetterReasons lists every reason a record can be dead-lettered for.
var DeadLetterReasons = []schemas.Reason{schemas.ReasonTooLarge, schemas.ReasonInvalidUTF8, schemas.ReasonInvalidJSON, schemas.ReasonSchema,
	ingest.ReasonFormat, ReasonFutureTimestamp, ReasonUnknownTopic, ReasonProcessorError, ReasonLate}

// Dead-letter headers.
const (
	HeaderReason          = "cx-reason"
	HeaderDetail          = "cx-detail"
	HeaderSourceTopic     = "cx-source-topic"
	HeaderSourcePartition = "cx-source-partition"
	HeaderSourceOffset    = "cx-source-offset"
	HeaderFailedAt        = "cx-failed-at"
	HeaderTruncated       = "cx-truncated-from"
	HeaderAlertType       = "cx-alert-type"
	HeaderAlertID         = "cx-alert-id"
	HeaderPriority        = "cx-priority"
)

// Options build a Pipeline. Topics (all but Transitions), Validator, the
// three processors, Store, Publisher and Metrics are required; every other
// field is optional, with the default its comment gives.
type Options struct {
	Topics    Topics
	Validator *schemas.Validator
	// ClickInput and ChatInput read the input topics in their configured
	// formats (nil: cxstream's own messages, through Validator).
	ClickInput, ChatInput *ingest.Decoder
	// Vocabulary gives the source's event names their roles (purchase,
	// support contact, ...); the zero value knows the built-in names.
	Vocabulary schemas.Vocabulary
	Funnel     *funnel.Processor
	Sentiment  *sentiment.Processor
	Churn      *churn.Processor
	Store      *state.Store
	Publisher  Publisher
	// Queue, when set, receives negative-chat alerts after Kafka has them.
	Queue   AlertQueue
	Metrics *metrics.Metrics
	Logger  *zap.Logger
	// MaxClockSkew: events stamped further in the future are dead
	// letters (default 1h).
	MaxClockSkew time.Duration
	// AllowedLateness: a click event older than the user's latest by more
	// than this is a dead letter (reason late); within it, funnels put it
	// in its place. 0 accepts any lateness in arrival order.
	AllowedLateness time.Duration
	// MaxDeadLetterBytes cuts larger dead-letter values, with a header
	// giving the original size (default 900 KiB, under Kafka's default
	// 1 MB record limit).
	MaxDeadLetterBytes int
	// Pseudonymizer replaces user ids before they become keys or leave in
	// alerts (nil or disabled: ids stay as they are).
	Pseudonymizer *privacy.Pseudonymizer
	// AlertOriginalID puts the original user id in alerts
	// (original_user_id) when ids are pseudonymised.
	AlertOriginalID bool
	// DedupWindow is how many recent event ids per user and stream are
	// remembered to drop duplicates (default 64).
	DedupWindow int
	// PerEventRoundTrips makes every event its own batch (a Redis load,
	// timer write and state write per event): the naive design, kept as a
	// switch so the benchmark can compare it on the real code path.
	PerEventRoundTrips bool
	// DuePage: at most this many due timers are loaded at once (default
	// DefaultDuePage).
	DuePage int
	// Currency names the unit of customers' spend in alert reasons
	// (events.purchase.default_currency); "" leaves it out.
	Currency string
	// IdleAdvance: a clickstream partition with no lag and no record for
	// this long has its watermark moved to the wall clock less the
	// allowed lateness, so timers of silent users fire in live operation.
	// 0 never advances by the wall clock.
	IdleAdvance time.Duration
	// Now is the clock, for tests (default time.Now).
	Now func() time.Time
}

func (o *Options) validate() error {
	switch {
	case o.Topics.Clickstream == "" || o.Topics.Chat == "" || o.Topics.Alerts == "" || o.Topics.DeadLetter == "":
		return errors.New("pipeline: clickstream, chat, alerts and deadletter topics are required")
	case o.Validator == nil || o.Funnel == nil || o.Sentiment == nil || o.Churn == nil:
		return errors.New("pipeline: validator and all processors are required")
	case o.Store == nil || o.Publisher == nil || o.Metrics == nil:
		return errors.New("pipeline: store, publisher and metrics are required")
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.MaxClockSkew <= 0 {
		o.MaxClockSkew = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.DedupWindow <= 0 {
		o.DedupWindow = 64
	}
	if o.DuePage <= 0 {
		o.DuePage = DefaultDuePage
	}
	if o.MaxDeadLetterBytes <= 0 {
		o.MaxDeadLetterBytes = 900 << 10
	}
	return nil
}

// Pipeline processes batches. It is safe for concurrent use by one
// goroutine per partition.
type Pipeline struct {
	o                                 Options
	funnelObs, sentimentObs, churnObs metrics.ProcessorObserver

	wmMu sync.Mutex
	wms  map[topicPartition]int64 // watermarks of the partitions this instance works
}

// New checks the options and returns a pipeline.
func New(o Options) (*Pipeline, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	presetMetrics(o)
	return &Pipeline{o: o, funnelObs: o.Metrics.Processor("funnel"), sentimentObs: o.Metrics.Processor("sentiment"), churnObs: o.Metrics.Processor("churn")}, nil
}

// ClickDoc is a user's clickstream-side document (Redis key
// <prefix>:{<user>}:click, field s).
type ClickDoc struct {
	Fence map[string]int64 `json:"fence"`
	// Seen holds hashes of the user's latest event ids, to count an event
	// sent twice upstream once.
	Seen   []uint64     `json:"seen,omitempty"`
	Funnel funnel.State `json:"funnel,omitempty"`
	Churn  churn.State  `json:"churn"`
}

// ChatDoc is a user's chat-side document (<prefix>:{<user>}:chat).
type ChatDoc struct {
	Fence     map[string]int64 `json:"fence"`
	Seen      []uint64         `json:"seen,omitempty"`
	Sentiment sentiment.State  `json:"sentiment"`
}

type user struct {
	docs       state.UserDocs
	click      ClickDoc
	chat       ChatDoc
	clickDirty bool
	chatDirty  bool
	// timerIndex is the timer set of the partition the user's clicks come
	// from, once a click of theirs was applied or a timer of theirs read.
	timerIndex string
	// reschedule: the user's timer must be set again though the state did
	// not change (it fired early).
	reschedule bool
}

type event struct {
	rec   *kgo.Record
	click *schemas.ClickEvent
	chat  *schemas.ChatMessage
	// originalUserID is the id before pseudonymisation.
	originalUserID string
}

func (e event) eventID() string {
	if e.click != nil {
		return e.click.EventID
	}
	return e.chat.EventID
}

func (e event) userID() string {
	if e.click != nil {
		return e.click.UserID
	}
	return e.chat.UserID
}

// Result counts what a batch did.
type Result struct {
	Applied, Skipped, Duplicates, DeadLetters, Alerts int
}

// Process makes one batch durable. Records must be in offset order; they
// may come from several partitions. On error nothing is committed and the
// caller retries the batch: fences make the retry safe.
func (p *Pipeline) Process(ctx context.Context, recs []*kgo.Record) (Result, error) {
	if p.o.PerEventRoundTrips && len(recs) > 1 {
		var total Result
		for i := range recs {
			res, err := p.Process(ctx, recs[i:i+1])
			total.Applied += res.Applied
			total.Skipped += res.Skipped
			total.Duplicates += res.Duplicates
			total.DeadLetters += res.DeadLetters
			total.Alerts += res.Alerts
			if err != nil {
				return total, err
			}
		}
		return total, nil
	}
	start := time.Now()
	now := p.o.Now()
	b := &batch{nowMs: now.UnixMilli()}
	events := make([]event, 0, len(recs))
	userIDs := make([]string, 0, len(recs))
	seen := make(map[string]bool, len(recs))
	for _, r := range recs {
		ev, reason, detail := p.decode(r, now)
		if reason != "" {
			b.out = append(b.out, p.deadLetter(r, reason, detail, now))
			b.t.add(&b.t.deadLetters, r.Topic+"\x00"+string(reason))
			continue
		}
		events = append(events, ev)
		if id := ev.userID(); !seen[id] {
			seen[id] = true
			userIDs = append(userIDs, id)
		}
	}
	// Each clickstream partition's watermark, and the timers that come
	// due as this batch moves it.
	clocks := map[topicPartition]*clock{}
	for _, ev := range events {
		if ev.click == nil {
			continue
		}
		tp := topicPartition{ev.rec.Topic, ev.rec.Partition}
		c := clocks[tp]
		if c == nil {
			wm, err := p.watermark(ctx, tp)
			if err != nil {
				return b.res, err
			}
			c = &clock{tp: tp, index: p.o.Store.TimerIndex(tp.topic, tp.partition), wm: wm, start: wm, end: wm}
			clocks[tp] = c
		}
		c.end = max(c.end, ev.click.EventTime-p.o.AllowedLateness.Milliseconds())
	}
	dueIDs, err := p.dueTimers(ctx, clocks)
	if err != nil {
		return b.res, err
	}
	if k := p.splitAt(recs, events, clocks); k < len(recs) {
		// More timers fall due within this batch than one page holds:
		// the records up to where the watermark passes the page's last
		// deadline go first, the rest as a batch of their own.
		first, err := p.Process(ctx, recs[:k])
		if err != nil {
			return first, err
		}
		rest, err := p.Process(ctx, recs[k:])
		return addResults(first, rest), err
	}
	for _, id := range dueIDs {
		if !seen[id] {
			seen[id] = true
			userIDs = append(userIDs, id)
		}
	}
	if b.users, err = p.load(ctx, userIDs); err != nil {
		return b.res, err
	}
	for _, c := range clocks {
		p.armTimers(b, c)
	}

	// Keys derived from the partition, built once per batch, not per event.
	type partitionKeys struct{ fence, timers string }
	keys := map[topicPartition]partitionKeys{}
	for _, ev := range events {
		u := b.users[ev.userID()]
		tp := topicPartition{ev.rec.Topic, ev.rec.Partition}
		pk, ok := keys[tp]
		if !ok {
			pk = partitionKeys{fence: ev.rec.Topic + "/" + strconv.Itoa(int(ev.rec.Partition)), timers: p.o.Store.TimerIndex(ev.rec.Topic, ev.rec.Partition)}
			keys[tp] = pk
		}
		if c := clocks[tp]; c != nil {
			// Timers the watermark passed before this record fire
			// before it, whatever the batch boundaries: the result is a
			// function of the records alone.
			if err := p.fireUpTo(b, c, c.wm); err != nil {
				return b.res, err
			}
			c.wm = max(c.wm, ev.click.EventTime-p.o.AllowedLateness.Milliseconds())
		}
		fk := pk.fence
		fence := u.click.Fence
		if ev.chat != nil {
			fence = u.chat.Fence
		}
		if last, ok := fence[fk]; ok && ev.rec.Offset <= last {
			b.res.Skipped++
			b.t.add(&b.t.skipped, ev.rec.Topic)
			continue
		}
		if ev.click != nil && p.o.AllowedLateness > 0 && ev.click.EventTime < u.click.Churn.LastSeen-p.o.AllowedLateness.Milliseconds() {
			b.out = append(b.out, p.deadLetter(ev.rec, ReasonLate, fmt.Sprintf("event_time is %s behind the user's latest event; allowed lateness %s",
				time.Duration(u.click.Churn.LastSeen-ev.click.EventTime)*time.Millisecond, p.o.AllowedLateness), now))
			b.t.add(&b.t.deadLetters, ev.rec.Topic+"\x00"+string(ReasonLate))
			fence[fk] = ev.rec.Offset
			markDirty(u, ev)
			continue
		}
		seenIDs := &u.click.Seen
		if ev.chat != nil {
			seenIDs = &u.chat.Seen
		}
		if h := hashID(ev.eventID()); slices.Contains(*seenIDs, h) {
			b.res.Duplicates++
			b.t.add(&b.t.duplicates, ev.rec.Topic)
			fence[fk] = ev.rec.Offset
			markDirty(u, ev)
			continue
		} else {
			*seenIDs = append(*seenIDs, h)
			if len(*seenIDs) > p.o.DedupWindow {
				*seenIDs = (*seenIDs)[len(*seenIDs)-p.o.DedupWindow:]
			}
		}
		alerts, transitions, perr := p.apply(u, ev)
		if perr != nil {
			// A processor bug must not stop the stream or be silent:
			// the event goes to the dead letters, the state keeps what
			// was applied before it.
			p.o.Logger.Error("processor failed on an event", zap.String("topic", ev.rec.Topic), zap.Int32("partition", ev.rec.Partition), zap.Int64("offset", ev.rec.Offset), zap.Error(perr))
			b.out = append(b.out, p.deadLetter(ev.rec, ReasonProcessorError, perr.Error(), now))
			b.t.add(&b.t.deadLetters, ev.rec.Topic+"\x00"+string(ReasonProcessorError))
		}
		fence[fk] = ev.rec.Offset
		markDirty(u, ev)
		if ev.click != nil {
			u.timerIndex = pk.timers
			if c := clocks[tp]; c != nil {
				c.schedule(ev.userID(), p.nextDue(u))
			}
		}
		b.res.Applied++
		b.t.add(&b.t.applied, ev.rec.Topic)
		for _, a := range alerts {
			if p.o.AlertOriginalID && p.o.Pseudonymizer.Enabled() {
				a.OriginalUserID = ev.originalUserID
			}
			a.Source = &schemas.AlertSource{Topic: ev.rec.Topic, Partition: ev.rec.Partition, Offset: ev.rec.Offset, EventID: ev.eventID()}
		}
		if err := p.emitInto(b, ev.userID(), alerts, transitions); err != nil {
			return b.res, err
		}
	}
	for _, c := range clocks {
		if err := p.fireUpTo(b, c, c.wm); err != nil {
			return b.res, err
		}
	}
	for _, r := range b.out {
		if r.Topic == p.o.Topics.DeadLetter {
			b.res.DeadLetters++
		}
	}
	if err := p.finish(ctx, b, clocks); err != nil {
		return b.res, err
	}
	for _, c := range clocks {
		if c.truncated && c.wm > c.end {
			// One record moved the watermark past more than a page of
			// timers: fire the rest before the next record.
			res, err := p.drain(ctx, c.tp, c.end, c.wm, now)
			b.res = addResults(b.res, res)
			if err != nil {
				return b.res, err
			}
		}
	}
	// Counted once the batch is durable: a retried batch counts once.
	countReceived(p.o.Metrics, recs)
	p.o.Metrics.BatchSeconds.Observe(time.Since(start).Seconds())
	return b.res, nil
}

// splitAt returns how many leading records can be processed with the due
// timers read: all of them unless a clock's page came back full, else the
// records while that partition's watermark stays within the page (at
// least one).
func (p *Pipeline) splitAt(recs []*kgo.Record, events []event, clocks map[topicPartition]*clock) int {
	lateness := p.o.AllowedLateness.Milliseconds()
	times := make(map[*kgo.Record]int64, len(events))
	for _, ev := range events {
		if ev.click != nil {
			times[ev.rec] = ev.click.EventTime
		}
	}
	k := len(recs)
	for tp, c := range clocks {
		if !c.truncated {
			continue
		}
		wm := c.start
		for i, r := range recs {
			at, ok := times[r]
			if !ok || r.Topic != tp.topic || r.Partition != tp.partition {
				continue
			}
			if wm = max(wm, at-lateness); wm > c.end {
				k = min(k, max(1, i))
				break
			}
		}
	}
	return k
}

func addResults(a, b Result) Result {
	return Result{Applied: a.Applied + b.Applied, Skipped: a.Skipped + b.Skipped, Duplicates: a.Duplicates + b.Duplicates,
		DeadLetters: a.DeadLetters + b.DeadLetters, Alerts: a.Alerts + b.Alerts}
}

// batch is what one Process or FireTimers call builds up before it makes
// it durable.
type batch struct {
	users   map[string]*user
	out     []*kgo.Record
	emitted []*schemas.Alert
	t       tally
	res     Result
	nowMs   int64 // wall clock: detected_at of alerts
}

func (p *Pipeline) emitInto(b *batch, userID string, alerts []*schemas.Alert, transitions []funnel.Transition) error {
	var err error
	b.out, b.emitted, err = p.emit(&b.t, b.out, b.emitted, userID, alerts, transitions, b.nowMs)
	b.res.Alerts += len(alerts)
	return err
}

// finish makes a batch durable (commitEffects), then raises the
// partitions' stored watermarks: only after the state they account for is
// saved, so a restart never starts from a watermark its state lacks.
func (p *Pipeline) finish(ctx context.Context, b *batch, clocks map[topicPartition]*clock) error {
	if err := p.commitEffects(ctx, b.out, b.emitted, b.users); err != nil {
		return err
	}
	b.t.record(p.o.Metrics)
	for _, c := range clocks {
		if c.wm > c.start && c.wm != noWatermark {
			// The batch is durable: a watermark that fails to be stored
			// is only behind (a lower bound), and the next batch or a
			// replay after a restart moves it again.
			if err := p.o.Store.RaiseWatermark(ctx, c.tp.topic, c.tp.partition, c.wm); err != nil {
				p.o.Logger.Warn("watermark not stored", zap.String("topic", c.tp.topic), zap.Int32("partition", c.tp.partition), zap.Error(err))
			}
			p.setWatermark(c.tp, c.wm)
		}
	}
	return nil
}

// commitEffects makes a batch's effects durable in the order that keeps
// replays safe: alerts and dead letters acknowledged by Kafka, then, in one
// Redis round trip, timers (hints: a timer that fires early finds nothing
// due in the state) followed by the state, whose fence marks the events
// applied. The support queue is
// fed after Kafka, like any other subscriber.
func (p *Pipeline) commitEffects(ctx context.Context, out []*kgo.Record, alerts []*schemas.Alert, users map[string]*user) error {
	if err := p.o.Publisher.Publish(ctx, out); err != nil {
		return fmt.Errorf("publish alerts: %w", err)
	}
	if p.o.Queue != nil && len(alerts) > 0 {
		if err := p.o.Queue.Push(ctx, alerts); err != nil {
			return err
		}
	}
	var timers []state.Timer
	for id, u := range users {
		if (u.clickDirty || u.reschedule) && u.timerIndex != "" {
			timers = append(timers, state.Timer{Index: u.timerIndex, User: id, Due: p.nextDue(u)})
		}
	}
	return p.save(ctx, timers, users)
}

// nextDue is when the user's click side needs attention without a new
// event: a funnel window ending, or an inactivity check. 0: never.
func (p *Pipeline) nextDue(u *user) int64 {
	due := p.o.Funnel.NextDeadline(u.click.Funnel)
	if c := p.o.Churn.NextCheck(&u.click.Churn); c > 0 && (due == 0 || c < due) {
		due = c
	}
	return due
}

// FireTimers is called between batches with the wall clock. Timers fire
// by event time, as the partition's watermark passes them (in Process);
// this only advances an idle partition's watermark: when the partition
// has had no record for IdleAdvance and has no lag (idleFor says how
// long), its watermark moves to now less the allowed lateness, so silent
// users are still noticed in live operation.
func (p *Pipeline) FireTimers(ctx context.Context, topic string, partition int32, now time.Time, idleFor time.Duration) (Result, error) {
	if topic != p.o.Topics.Clickstream {
		return Result{}, nil
	}
	tp := topicPartition{topic, partition}
	index := p.o.Store.TimerIndex(topic, partition)
	if pending, err := p.o.Store.Pending(ctx, index); err == nil {
		p.o.Metrics.TimersPending.WithLabelValues(topic, strconv.Itoa(int(partition))).Set(float64(pending))
	}
	if p.o.IdleAdvance <= 0 || idleFor < p.o.IdleAdvance {
		return Result{}, nil
	}
	wm, err := p.watermark(ctx, tp)
	if err != nil {
		return Result{}, err
	}
	target := now.UnixMilli() - p.o.AllowedLateness.Milliseconds()
	if target <= wm {
		return Result{}, nil
	}
	return p.drain(ctx, tp, wm, target, now)
}

// drain fires, a page at a time, every timer of the partition due at or
// before target, moving its watermark from wm to target; each page is made
// durable before the next is read.
func (p *Pipeline) drain(ctx context.Context, tp topicPartition, wm, target int64, now time.Time) (Result, error) {
	var total Result
	for {
		c := &clock{tp: tp, index: p.o.Store.TimerIndex(tp.topic, tp.partition), wm: wm, start: wm, end: target}
		clocks := map[topicPartition]*clock{tp: c}
		ids, err := p.dueTimers(ctx, clocks)
		if err != nil {
			return total, err
		}
		b := &batch{nowMs: now.UnixMilli()}
		if b.users, err = p.load(ctx, ids); err != nil {
			return total, err
		}
		p.armTimers(b, c)
		c.wm = max(c.wm, c.end)
		if err := p.fireUpTo(b, c, c.wm); err != nil {
			return total, err
		}
		if err := p.finish(ctx, b, clocks); err != nil {
			return total, err
		}
		total.Applied += b.res.Applied
		total.Alerts += b.res.Alerts
		if !c.truncated {
			return total, nil
		}
		wm = c.wm
	}
}

// noWatermark: the partition has seen no event yet.
const noWatermark = math.MinInt64

// clock is one clickstream partition's event time during a batch: the
// watermark (the largest event time seen less the allowed lateness) and
// the users whose timers come due as it moves, earliest first.
type clock struct {
	tp             topicPartition
	index          string
	wm, start, end int64 // now, at the start, and where the batch takes it
	due            dueHeap
	fired          map[string]int64
	// truncated: more timers were due than one page; end is the last
	// deadline read, and what lies beyond is fired by drain.
	truncated bool
}

// schedule notes that user's timer is due at due (0: none).
func (c *clock) schedule(user string, due int64) {
	if due > 0 && due <= c.end {
		heap.Push(&c.due, dueTimer{due: due, user: user})
	}
}

type dueTimer struct {
	due  int64
	user string
}

// dueHeap orders timers by deadline, then user, so firing order is a
// function of the state alone.
type dueHeap []dueTimer

func (h dueHeap) Len() int { return len(h) }
func (h dueHeap) Less(i, j int) bool {
	return h[i].due < h[j].due || (h[i].due == h[j].due && h[i].user < h[j].user)
}
func (h dueHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)   { *h = append(*h, x.(dueTimer)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// DefaultDuePage bounds how many due timers one batch loads: a watermark
// that jumps (the first idle advance after a backfill) may pass a whole
// partition's timers, which are then fired a page at a time.
const DefaultDuePage = 5000

// dueTimers reads, for every clock, the users whose stored timers fall due
// before the clock's end, and returns them to be loaded with the batch. A
// clock whose page came back full has truncated set and its end lowered
// to the last deadline read.
func (p *Pipeline) dueTimers(ctx context.Context, clocks map[topicPartition]*clock) ([]string, error) {
	var ids []string
	for _, c := range clocks {
		if c.end == noWatermark {
			continue
		}
		due, err := p.o.Store.DueUpTo(ctx, c.index, c.end, p.o.DuePage)
		if err != nil {
			return nil, err
		}
		if len(due) == p.o.DuePage {
			c.truncated, c.end = true, due[len(due)-1].Due
		}
		for _, d := range due {
			ids = append(ids, d.User)
			c.due = append(c.due, dueTimer{due: d.Due, user: d.User})
		}
	}
	return ids, nil
}

// armTimers replaces the stored deadlines read by dueTimers with the ones
// the loaded state gives (the state decides what is due; a stored timer is
// a hint), and marks those users for rescheduling.
func (p *Pipeline) armTimers(b *batch, c *clock) {
	stored := c.due
	c.due = nil
	for _, d := range stored {
		u := b.users[d.user]
		u.timerIndex = c.index
		u.reschedule = true
		c.schedule(d.user, p.nextDue(u))
	}
}

// fireUpTo fires, in deadline order, every timer of c due at or before
// limit: a funnel window that ran out (abandonment) or an inactivity check
// (churn), stamped with the deadline's event time.
func (p *Pipeline) fireUpTo(b *batch, c *clock, limit int64) error {
	for c.due.Len() > 0 && c.due[0].due <= limit {
		d := heap.Pop(&c.due).(dueTimer)
		u := b.users[d.user]
		if p.nextDue(u) != d.due || c.fired[d.user] == d.due {
			continue // stale: the state moved on since it was scheduled
		}
		if c.fired == nil {
			c.fired = map[string]int64{}
		}
		c.fired[d.user] = d.due
		u.timerIndex = c.index
		u.clickDirty = true
		transitions := p.o.Funnel.Expire(u.click.Funnel, d.due)
		var alerts []*schemas.Alert
		if check := p.o.Churn.NextCheck(&u.click.Churn); check > 0 && check <= d.due {
			if a := p.o.Churn.CheckInactive(&u.click.Churn, d.user, p.churnSignals(u), check); a != nil {
				alerts = append(alerts, a)
			}
		} else if len(transitions) > 0 {
			// An abandonment can tip the churn score.
			if a := p.o.Churn.Evaluate(&u.click.Churn, d.user, p.churnSignals(u), d.due, "abandoned:"+strconv.FormatInt(d.due, 10)); a != nil {
				alerts = append(alerts, a)
			}
		}
		// The state holds only the pseudonym: timer alerts cannot carry
		// the original id.
		if err := p.emitInto(b, d.user, alerts, transitions); err != nil {
			return err
		}
		b.res.Applied++
		p.o.Metrics.TimersFired.Inc()
		if next := p.nextDue(u); next > d.due {
			c.schedule(d.user, next)
		}
	}
	return nil
}

// watermark returns the partition's watermark: cached while this
// instance owns the partition, else the stored one.
func (p *Pipeline) watermark(ctx context.Context, tp topicPartition) (int64, error) {
	p.wmMu.Lock()
	wm, ok := p.wms[tp]
	p.wmMu.Unlock()
	if ok {
		return wm, nil
	}
	wm, found, err := p.o.Store.Watermark(ctx, tp.topic, tp.partition)
	if err != nil {
		return 0, err
	}
	if !found {
		wm = noWatermark
	}
	p.setWatermark(tp, wm)
	return wm, nil
}

func (p *Pipeline) setWatermark(tp topicPartition, wm int64) {
	p.wmMu.Lock()
	defer p.wmMu.Unlock()
	if p.wms == nil {
		p.wms = map[topicPartition]int64{}
	}
	p.wms[tp] = wm
}

// Release forgets a partition's cached watermark when this instance no
// longer owns it; the next owner reads the stored one.
func (p *Pipeline) Release(topic string, partition int32) {
	p.wmMu.Lock()
	defer p.wmMu.Unlock()
	delete(p.wms, topicPartition{topic, partition})
}

// tally counts a batch's outcomes; they reach the metrics only once the
// batch is durable, so a retried batch is not counted twice and a reader
// of the metrics never sees work that is not yet in Redis.
type tally struct {
	applied, skipped, duplicates, deadLetters, alerts, transitions map[string]int
}

func (t *tally) add(m *map[string]int, key string) {
	if *m == nil {
		*m = map[string]int{}
	}
	(*m)[key]++
}

func (t *tally) record(m *metrics.Metrics) {
	for k, n := range t.applied {
		m.Applied.WithLabelValues(k).Add(float64(n))
	}
	for k, n := range t.skipped {
		m.ReplaySkipped.WithLabelValues(k).Add(float64(n))
	}
	for k, n := range t.duplicates {
		m.Duplicates.WithLabelValues(k).Add(float64(n))
	}
	for k, n := range t.deadLetters {
		m.DeadLetters.WithLabelValues(strings.Split(k, "\x00")...).Add(float64(n))
	}
	for k, n := range t.alerts {
		m.Alerts.WithLabelValues(strings.Split(k, "\x00")...).Add(float64(n))
	}
	for k, n := range t.transitions {
		m.FunnelSteps.WithLabelValues(strings.Split(k, "\x00")...).Add(float64(n))
	}
}

// presetMetrics creates the pipeline's series at 0 for every label value
// known at start: input topics, dead-letter reasons, alert types and
// priorities, processors, funnel steps.
func presetMetrics(o Options) {
	m := o.Metrics
	inputs := []string{o.Topics.Clickstream, o.Topics.Chat}
	for _, c := range []*prometheus.CounterVec{m.Received, m.Applied, m.ReplaySkipped, m.Duplicates} {
		metrics.Preset(c, inputs)
	}
	reasons := make([]string, len(DeadLetterReasons))
	for i, r := range DeadLetterReasons {
		reasons[i] = string(r)
	}
	metrics.Preset(m.DeadLetters, inputs, reasons)
	priorities := []string{string(schemas.PriorityLow), string(schemas.PriorityNormal), string(schemas.PriorityHigh), string(schemas.PriorityUrgent)}
	metrics.Preset(m.Alerts, schemas.AlertTypes, priorities)
	metrics.Preset(m.ProcessorErrors, []string{"funnel", "sentiment", "churn"})
	for _, d := range o.Funnel.Definitions() {
		steps := make([]string, len(d.Steps))
		for i, s := range d.Steps {
			steps[i] = s.Name
		}
		kinds := []string{string(funnel.Entered), string(funnel.Advanced), string(funnel.Converted), string(funnel.Abandoned)}
		metrics.Preset(m.FunnelSteps, []string{d.Name}, steps, kinds)
	}
}

// countReceived adds a batch's records to the received counter, one label
// lookup per run of records from the same topic.
func countReceived(m *metrics.Metrics, recs []*kgo.Record) {
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].Topic == recs[i].Topic {
			j++
		}
		m.Received.WithLabelValues(recs[i].Topic).Add(float64(j - i))
		i = j
	}
}

func markDirty(u *user, ev event) {
	if ev.chat != nil {
		u.chatDirty = true
	} else {
		u.clickDirty = true
	}
}

// hashID is FNV-1a: the dedup window stores 8 bytes per event id.
func hashID(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	return h
}

// emit turns a user's alerts and funnel transitions into records to
// produce, and counts them.
func (p *Pipeline) emit(t *tally, out []*kgo.Record, emitted []*schemas.Alert, userID string, alerts []*schemas.Alert, transitions []funnel.Transition, nowMs int64) ([]*kgo.Record, []*schemas.Alert, error) {
	for _, a := range alerts {
		a.DetectedAt = nowMs
		rec, err := p.alertRecord(a)
		if err != nil {
			return out, emitted, err
		}
		out = append(out, rec)
		if p.o.Topics.AlertsV1 != "" {
			v1, err := p.alertRecordV1(a)
			if err != nil {
				return out, emitted, err
			}
			out = append(out, v1)
		}
		emitted = append(emitted, a)
		t.add(&t.alerts, a.Type+"\x00"+string(a.Priority))
	}
	for _, tr := range transitions {
		t.add(&t.transitions, tr.Funnel+"\x00"+tr.StepName+"\x00"+string(tr.Kind))
		if p.o.Topics.Transitions != "" {
			out = append(out, p.transitionRecord(userID, tr))
		}
	}
	return out, emitted, nil
}

type topicPartition struct {
	topic     string
	partition int32
}

func (p *Pipeline) decode(r *kgo.Record, now time.Time) (event, schemas.Reason, string) {
	var ev event
	ev.rec = r
	var err error
	var at int64
	switch r.Topic {
	case p.o.Topics.Clickstream:
		var c schemas.ClickEvent
		if p.o.ClickInput != nil {
			c, err = p.o.ClickInput.Click(r.Value)
		} else {
			c, err = p.o.Validator.DecodeClick(r.Value)
		}
		p.o.Vocabulary.Complete(&c)
		ev.click, at = &c, c.EventTime
	case p.o.Topics.Chat:
		var m schemas.ChatMessage
		if p.o.ChatInput != nil {
			m, err = p.o.ChatInput.Chat(r.Value)
		} else {
			m, err = p.o.Validator.DecodeChat(r.Value)
		}
		ev.chat, at = &m, m.EventTime
	default:
		return ev, ReasonUnknownTopic, "no processor reads topic " + r.Topic
	}
	if err != nil {
		var ie *schemas.InvalidError
		if errors.As(err, &ie) {
			return ev, ie.Reason, ie.Detail
		}
		return ev, schemas.ReasonSchema, "undecodable"
	}
	if limit := now.Add(p.o.MaxClockSkew).UnixMilli(); at > limit {
		return ev, ReasonFutureTimestamp, fmt.Sprintf("event_time %d is more than %s ahead of the processor clock", at, p.o.MaxClockSkew)
	}
	if p.o.Pseudonymizer.Enabled() {
		if ev.click != nil {
			ev.originalUserID, ev.click.UserID = ev.click.UserID, p.o.Pseudonymizer.ID(ev.click.UserID)
		} else {
			ev.originalUserID, ev.chat.UserID = ev.chat.UserID, p.o.Pseudonymizer.ID(ev.chat.UserID)
		}
	}
	return ev, "", ""
}

// apply runs the processors for one event. A panic in a processor is
// returned as an error.
func (p *Pipeline) apply(u *user, ev event) (alerts []*schemas.Alert, transitions []funnel.Transition, err error) {
	name := "funnel"
	defer func() {
		if r := recover(); r != nil {
			p.o.Metrics.ProcessorErrors.WithLabelValues(name).Inc()
			err = fmt.Errorf("%s processor panicked: %v", name, r)
		}
	}()
	if ev.chat != nil {
		name = "sentiment"
		start := time.Now()
		cust := sentiment.Customer{Purchases: u.click.Churn.Purchases, Spend: u.click.Churn.Spend, Currency: p.o.Currency, FunnelStage: p.stage(u)}
		outcome := p.o.Sentiment.Apply(&u.chat.Sentiment, *ev.chat, cust)
		p.sentimentObs.Since(start)
		if outcome.Alert != nil {
			alerts = append(alerts, outcome.Alert)
		}
		return alerts, nil, nil
	}
	c := ev.click
	start := time.Now()
	transitions = p.o.Funnel.Apply(u.click.Funnel, *c)
	p.funnelObs.Since(start)

	name = "churn"
	start = time.Now()
	churn.ObserveAs(&u.click.Churn, *c, p.o.Vocabulary.RoleOf(c.Type))
	if a := p.o.Churn.Evaluate(&u.click.Churn, c.UserID, p.churnSignals(u), c.EventTime, c.EventID); a != nil {
		alerts = append(alerts, a)
	}
	p.churnObs.Since(start)
	return alerts, transitions, nil
}

// stage is the user's funnel stage in the built-in vocabulary: a step
// named "Product Added" declared cart_add reads as add_to_cart, so the
// processors that weigh the stage understand the source's names.
func (p *Pipeline) stage(u *user) string {
	return p.o.Vocabulary.Canonical(p.o.Funnel.Stage(u.click.Funnel))
}

func (p *Pipeline) churnSignals(u *user) churn.Signals {
	sig := churn.Signals{
		NegativeAt:  u.chat.Sentiment.NegativeAt,
		ContactAt:   u.chat.Sentiment.ContactAt,
		FunnelStage: p.stage(u),
		Sentiment:   u.chat.Sentiment.User.Mean,
	}
	sig.AbandonedAt = p.o.Funnel.AbandonedAt(u.click.Funnel)
	return sig
}

func (p *Pipeline) load(ctx context.Context, ids []string) (map[string]*user, error) {
	start := time.Now()
	docs, err := p.o.Store.Load(ctx, ids)
	p.o.Metrics.RedisSeconds.WithLabelValues("load").Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	users := make(map[string]*user, len(ids))
	for _, id := range ids {
		u := &user{docs: docs[id]}
		if err := unmarshalDoc(u.docs.Click.Data, &u.click); err != nil {
			return nil, fmt.Errorf("user state %s: %w", state.Click, err)
		}
		if err := unmarshalDoc(u.docs.Chat.Data, &u.chat); err != nil {
			return nil, fmt.Errorf("user state %s: %w", state.Chat, err)
		}
		if u.click.Fence == nil {
			u.click.Fence = map[string]int64{}
		}
		if u.click.Funnel == nil {
			u.click.Funnel = funnel.State{}
		}
		if u.chat.Fence == nil {
			u.chat.Fence = map[string]int64{}
		}
		users[id] = u
	}
	return users, nil
}

func unmarshalDoc(data []byte, into any) error {
	if len(data) == 0 {
		return nil
	}
	return json.Unmarshal(data, into)
}

func (p *Pipeline) save(ctx context.Context, timers []state.Timer, users map[string]*user) error {
	var writes []state.Write
	for id, u := range users {
		if u.clickDirty {
			data, err := json.Marshal(&u.click)
			if err != nil {
				return fmt.Errorf("encode state: %w", err)
			}
			writes = append(writes, state.Write{User: id, Side: state.Click, Expect: u.docs.Click.Version, Data: data})
		}
		if u.chatDirty {
			data, err := json.Marshal(&u.chat)
			if err != nil {
				return fmt.Errorf("encode state: %w", err)
			}
			writes = append(writes, state.Write{User: id, Side: state.Chat, Expect: u.docs.Chat.Version, Data: data})
		}
	}
	start := time.Now()
	err := p.o.Store.SaveWithTimers(ctx, timers, writes)
	p.o.Metrics.RedisSeconds.WithLabelValues("save").Observe(time.Since(start).Seconds())
	if errors.Is(err, state.ErrConflict) {
		p.o.Metrics.StateConflicts.Inc()
	}
	return err
}

func (p *Pipeline) deadLetter(r *kgo.Record, reason schemas.Reason, detail string, now time.Time) *kgo.Record {
	headers := make([]kgo.RecordHeader, 0, len(r.Headers)+6)
	headers = append(headers, r.Headers...)
	headers = append(headers,
		kgo.RecordHeader{Key: HeaderReason, Value: []byte(reason)},
		kgo.RecordHeader{Key: HeaderDetail, Value: []byte(detail)},
		kgo.RecordHeader{Key: HeaderSourceTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderSourcePartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderFailedAt, Value: []byte(strconv.FormatInt(now.UnixMilli(), 10))},
	)
	value := r.Value
	if len(value) > p.o.MaxDeadLetterBytes {
		headers = append(headers, kgo.RecordHeader{Key: HeaderTruncated, Value: []byte(strconv.Itoa(len(value)))})
		value = value[:p.o.MaxDeadLetterBytes]
	}
	return &kgo.Record{Topic: p.o.Topics.DeadLetter, Key: r.Key, Value: value, Headers: headers}
}

func (p *Pipeline) alertRecord(a *schemas.Alert) (*kgo.Record, error) {
	value, err := json.Marshal(a)
	if err != nil {
		return nil, fmt.Errorf("encode alert: %w", err)
	}
	return &kgo.Record{
		Topic: p.o.Topics.Alerts,
		Key:   []byte(a.UserID),
		Value: value,
		Headers: []kgo.RecordHeader{
			{Key: HeaderAlertType, Value: []byte(a.Type)},
			{Key: HeaderAlertID, Value: []byte(a.AlertID)},
			{Key: HeaderPriority, Value: []byte(a.Priority)},
		},
	}, nil
}

// alertRecordV1 is the alert rendered as alert.v1 for topics.alerts_v1.
func (p *Pipeline) alertRecordV1(a *schemas.Alert) (*kgo.Record, error) {
	rec, err := p.alertRecord(a)
	if err != nil {
		return nil, err
	}
	if rec.Value, err = json.Marshal(a.V1()); err != nil {
		return nil, fmt.Errorf("encode alert.v1: %w", err)
	}
	rec.Topic = p.o.Topics.AlertsV1
	return rec, nil
}

func (p *Pipeline) transitionRecord(userID string, t funnel.Transition) *kgo.Record {
	value, _ := json.Marshal(struct {
		UserID string `json:"user_id"`
		funnel.Transition
	}{userID, t})
	return &kgo.Record{Topic: p.o.Topics.Transitions, Key: []byte(userID), Value: value}
}
