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
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/ingest"
	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors"
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
	// Segments receives segment changes (segments.v1) when the segment
	// processor is on; "" only counts them.
	Segments string `yaml:"segments"`
	// Outputs map other processors' outputs (processors.Record.Output)
	// to topics; an output with no topic is only counted.
	Outputs map[string]string `yaml:"-"`
	// Input says how the input topics' records are written (default:
	// cxstream's own messages).
	Input ingest.Inputs `yaml:"input"`
}

// DefaultTopics are the topic names cxstream uses unless configured.
func DefaultTopics() Topics {
	return Topics{Clickstream: "cx.clickstream.v1", Chat: "cx.chat.v1", Alerts: "cx.alerts.v2", DeadLetter: "cx.deadletter.v1", Segments: "cx.segments.v1"}
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

// Options build a Pipeline. Topics (all but Transitions), Validator,
// Processors, Store, Publisher and Metrics are required; every other
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
	// Processors, applied in this order to every event of their stream
	// (and to every timer, for Timed ones). Names must be unique.
	Processors []processors.Processor
	// Middleware wraps every processor's Step, outermost first (default:
	// Observe, then Recover).
	Middleware []Middleware
	Store      *state.Store
	Publisher  Publisher
	// Queue, when set, receives a batch's negative-chat alerts, pushed
	// while Kafka acknowledges them and before the state write.
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
	// CacheBytes bounds the cache of decoded user state of the partitions
	// this instance owns (see cache.go); 0 disables it. The naive design
	// (PerEventRoundTrips) never caches.
	CacheBytes int64
	// StateEncoding is how state documents are written (default binary);
	// both encodings are always read.
	StateEncoding Encoding
	// DuePage: at most this many due timers are loaded at once (default
	// DefaultDuePage).
	DuePage int
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
	case o.Validator == nil || len(o.Processors) == 0:
		return errors.New("pipeline: a validator and processors are required")
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
	switch o.StateEncoding {
	case "":
		o.StateEncoding = EncodingBinary
	case EncodingBinary, EncodingJSON:
	default:
		return fmt.Errorf("pipeline: unknown state encoding %q", o.StateEncoding)
	}
	if o.DuePage <= 0 {
		o.DuePage = DefaultDuePage
	}
	if o.MaxDeadLetterBytes <= 0 {
		o.MaxDeadLetterBytes = 900 << 10
	}
	names := map[string]bool{}
	for _, p := range o.Processors {
		switch {
		case names[p.Name()]:
			return fmt.Errorf("pipeline: two processors named %q", p.Name())
		case p.Name() == "fence" || p.Name() == "seen" || p.Name() == "latest":
			return fmt.Errorf("pipeline: processor name %q is reserved", p.Name())
		case p.Stream() != processors.Clicks && p.Stream() != processors.Chats:
			return fmt.Errorf("pipeline: processor %s reads unknown stream %q", p.Name(), p.Stream())
		}
		if _, timed := p.(processors.Timed); timed && p.Stream() != processors.Clicks {
			// Timers are kept and fired per clickstream partition.
			return fmt.Errorf("pipeline: processor %s has timers but reads the %s stream; only clickstream processors can", p.Name(), p.Stream())
		}
		names[p.Name()] = true
	}
	if o.Middleware == nil {
		o.Middleware = []Middleware{Observe(o.Metrics), Recover()}
	}
	return nil
}

// Pipeline processes batches. It is safe for concurrent use by one
// goroutine per partition.
type Pipeline struct {
	o      Options
	stages []stage
	procs  []processors.Processor
	// counters count the processors' records, by output.
	counters map[string]*prometheus.CounterVec

	wmMu sync.Mutex
	wms  map[topicPartition]int64 // watermarks of the partitions this instance works
	// unstored are watermarks of durable batches not yet stored in Redis:
	// the partition's next state write takes them along, or its next
	// timer tick or its release stores them (see finish).
	unstored map[topicPartition]int64
	// wmStoreFailing: the last watermark stored on its own failed, and no
	// batch has been made durable since: a release then does not try
	// (a rebalance would wait for each revoked partition's timeout).
	wmStoreFailing atomic.Bool

	cache *stateCache // nil: off
}

// New checks the options and returns a pipeline.
func New(o Options) (*Pipeline, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	presetMetrics(o)
	p := &Pipeline{o: o, procs: o.Processors, counters: recordCounters(o),
		wms: map[topicPartition]int64{}, unstored: map[topicPartition]int64{}}
	if o.CacheBytes > 0 && !o.PerEventRoundTrips {
		p.cache = newStateCache(o.CacheBytes, o.Metrics)
	}
	for _, proc := range o.Processors {
		var step Step = stepOf{proc}
		for i := len(o.Middleware) - 1; i >= 0; i-- {
			step = o.Middleware[i](proc.Name(), step)
		}
		st := stage{Processor: proc, step: step}
		st.timed, _ = proc.(processors.Timed)
		p.stages = append(p.stages, st)
	}
	return p, nil
}

// user is a user's state during a batch.
type user struct {
	*processors.User
	docs  state.UserDocs
	sides [2]side
	// timerIndex is the timer set of the partition the user's clicks come
	// from, once a click of theirs was applied or a timer of theirs read.
	timerIndex string
	// reschedule: the user's timer must be set again though the state did
	// not change (it fired early).
	reschedule bool
	// encoded is each document's encoded length, as read or written.
	encoded [2]int
	// written are the documents this batch wrote (nil: not written).
	written [2][]byte
	// otherOwned: the other stream's document came from the cache, as
	// this worker last wrote it.
	otherOwned bool
	// cached: the user's owned document came from the state cache.
	cached bool
}

// doc is the user's document i (0 click, 1 chat) as read or last written.
func (u *user) doc(i int) *state.Doc {
	if i == 1 {
		return &u.docs.Chat
	}
	return &u.docs.Click
}

type event struct {
	processors.Event
	rec *kgo.Record
	// originalUserID is the id before pseudonymisation.
	originalUserID string
}

// Result counts what a batch did.
type Result struct {
	Applied, Skipped, Duplicates, DeadLetters, Alerts int
}

// Process makes one batch durable. Records must be in offset order; they
// may come from several partitions. On error nothing is committed and the
// caller retries the batch: fences make the retry safe.
func (p *Pipeline) Process(ctx context.Context, recs []*kgo.Record) (Result, error) {
	return p.process(ctx, recs, nil)
}

// ProcessParts makes the batches of several workers durable as one: one
// load, one produce and one state write for all of them. Each part is what
// Process would take from one worker (the records of one partition
// number, in offset order); its users' documents come from and go back to
// its partition's state cache as in a batch of its own. On error nothing
// is committed and every part is to be retried.
func (p *Pipeline) ProcessParts(ctx context.Context, parts [][]*kgo.Record) (Result, error) {
	if len(parts) == 1 {
		return p.process(ctx, parts[0], nil)
	}
	var recs []*kgo.Record
	var owners []*owner
	for _, part := range parts {
		o := p.ownerOf(part)
		recs = append(recs, part...)
		for range part {
			owners = append(owners, o)
		}
	}
	return p.process(ctx, recs, owners)
}

// process is Process; recOwners, when set, gives each record's part's
// owner in the state cache (nil: one owner for the whole batch, ownerOf).
func (p *Pipeline) process(ctx context.Context, recs []*kgo.Record, recOwners []*owner) (Result, error) {
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
	b := &batch{nowMs: now.UnixMilli(), recs: recs}
	if recOwners == nil {
		b.owners.all = p.ownerOf(recs)
	} else {
		b.owners.byUser = make(map[string]*owner, len(recs))
		b.owners.tps = partitionsOf(recs)
	}
	events := make([]event, 0, len(recs))
	userIDs := make([]string, 0, len(recs))
	seen := make(map[string]bool, len(recs))
	for i, r := range recs {
		ev, reason, detail := p.decode(r, now)
		if reason != "" {
			p.reject(b, r, reason, detail, now)
			continue
		}
		events = append(events, ev)
		id := ev.UserID()
		if !seen[id] {
			seen[id] = true
			userIDs = append(userIDs, id)
			if recOwners != nil {
				b.owners.byUser[id] = recOwners[i]
			}
		} else if recOwners != nil && !sameOwner(b.owners.byUser[id], recOwners[i]) {
			// In the parts of two owners (the two topics partitioned
			// differently): read and written around the cache.
			b.owners.byUser[id] = nil
		}
	}
	// Each clickstream partition's watermark, and the timers that come
	// due as this batch moves it.
	clocks := map[topicPartition]*clock{}
	for _, ev := range events {
		if ev.Click == nil {
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
		c.end = max(c.end, ev.Time()-p.o.AllowedLateness.Milliseconds())
	}
	// The due timers are read with the batch's users; their users not in
	// the batch are loaded after, in a second round trip, when there are
	// any.
	dueClocks, queries := p.dueQueries(clocks)
	users, due, err := p.load(ctx, userIDs, b.owners, queries)
	if err != nil {
		return b.res, err
	}
	dueIDs := p.takeDue(dueClocks, due)
	if b.owners.byUser != nil {
		disownDueElsewhere(b.owners, dueClocks, due)
	}
	if k := p.splitAt(recs, events, clocks); k < len(recs) {
		// More timers fall due within this batch than one page holds:
		// the records up to where the watermark passes the page's last
		// deadline go first, the rest as a batch of their own.
		first, err := p.process(ctx, recs[:k], ownersUpTo(recOwners, k))
		if err != nil {
			return first, err
		}
		rest, err := p.process(ctx, recs[k:], ownersFrom(recOwners, k))
		return addResults(first, rest), err
	}
	var more []string
	for _, id := range dueIDs {
		if !seen[id] {
			seen[id] = true
			more = append(more, id)
		}
	}
	if len(more) > 0 {
		rest, _, err := p.load(ctx, more, b.owners, nil)
		if err != nil {
			return b.res, err
		}
		maps.Copy(users, rest)
	}
	b.users = users
	for _, c := range clocks {
		p.armTimers(b, c)
	}

	// Keys derived from the partition, built once per batch, not per event.
	type partitionKeys struct{ fence, timers string }
	keys := map[topicPartition]partitionKeys{}
	for _, ev := range events {
		u := b.users[ev.UserID()]
		tp := topicPartition{ev.rec.Topic, ev.rec.Partition}
		pk, ok := keys[tp]
		if !ok {
			pk = partitionKeys{fence: ev.rec.Topic + "/" + strconv.Itoa(int(ev.rec.Partition)), timers: p.o.Store.TimerIndex(ev.rec.Topic, ev.rec.Partition)}
			keys[tp] = pk
		}
		// Timers the watermark passed fire before the next record of
		// either stream, so right after the click that moved the
		// watermark past them, whatever the batch boundaries: the result
		// is a function of the records alone.
		for _, oc := range clocks {
			if err := p.fireUpTo(b, oc, oc.wm); err != nil {
				return b.res, err
			}
		}
		c := clocks[tp]
		if c != nil {
			c.wm = max(c.wm, ev.Time()-p.o.AllowedLateness.Milliseconds())
		}
		sd := &u.sides[sideIndex(ev.Stream())]
		if last, ok := sd.Fence[pk.fence]; ok && ev.rec.Offset <= last {
			b.res.Skipped++
			b.t.add(&b.t.skipped, ev.rec.Topic)
			continue
		}
		// From here on the record is accounted for in the user's state,
		// whatever becomes of it: its offset joins the fence.
		sd.Fence[pk.fence] = ev.rec.Offset
		sd.dirty = true
		if c != nil && p.o.AllowedLateness > 0 && ev.Time() < sd.Latest-p.o.AllowedLateness.Milliseconds() {
			p.reject(b, ev.rec, ReasonLate, fmt.Sprintf("event_time is %s behind the user's latest event; allowed lateness %s",
				time.Duration(sd.Latest-ev.Time())*time.Millisecond, p.o.AllowedLateness), now)
			continue
		}
		if h := hashID(ev.ID()); slices.Contains(sd.Seen, h) {
			b.res.Duplicates++
			b.t.add(&b.t.duplicates, ev.rec.Topic)
			continue
		} else {
			sd.Seen = append(sd.Seen, h)
			if len(sd.Seen) > p.o.DedupWindow {
				sd.Seen = sd.Seen[len(sd.Seen)-p.o.DedupWindow:]
			}
		}
		sd.Latest = max(sd.Latest, ev.Time())
		eff, perr := p.applyEvent(u, ev)
		if perr != nil {
			// A processor bug must not stop the stream or be silent:
			// the event goes to the dead letters, the state keeps what
			// was applied before it.
			p.o.Logger.Error("processor failed on an event", zap.String("topic", ev.rec.Topic), zap.Int32("partition", ev.rec.Partition), zap.Int64("offset", ev.rec.Offset), zap.Error(perr))
			p.reject(b, ev.rec, ReasonProcessorError, perr.Error(), now)
		}
		if c != nil {
			u.timerIndex = pk.timers
			c.schedule(ev.UserID(), p.nextDue(u))
		}
		b.res.Applied++
		b.t.add(&b.t.applied, ev.rec.Topic)
		for _, a := range eff.Alerts {
			if p.o.AlertOriginalID && p.o.Pseudonymizer.Enabled() {
				a.OriginalUserID = ev.originalUserID
			}
			a.Source = &schemas.AlertSource{Topic: ev.rec.Topic, Partition: ev.rec.Partition, Offset: ev.rec.Offset, EventID: ev.ID()}
		}
		if err := p.emitInto(b, ev.UserID(), eff); err != nil {
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
		if ev.Click != nil {
			times[ev.rec] = ev.Time()
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
	// recs are the input records of a Process call (none for timers).
	recs []*kgo.Record
	// owners: the partitions whose state cache the batch's users'
	// documents come from and go back to.
	owners owners
}

func (p *Pipeline) emitInto(b *batch, userID string, eff processors.Effects) error {
	var err error
	b.out, b.emitted, err = p.emit(&b.t, b.out, b.emitted, userID, eff, b.nowMs)
	b.res.Alerts += len(eff.Alerts)
	return err
}

// reject sends a record to the dead letters, with the reason.
func (p *Pipeline) reject(b *batch, r *kgo.Record, reason schemas.Reason, detail string, now time.Time) {
	b.out = append(b.out, p.deadLetter(r, reason, detail, now))
	b.t.add(&b.t.deadLetters, r.Topic+"\x00"+string(reason))
}

// finish makes a batch durable (commitEffects), then moves the
// partitions' watermarks on. Those are stored only after the state they
// account for is saved, so a restart never starts from a watermark its
// state lacks; not in a round trip of their own, but with the partition's
// next state write (or timer tick): a stored watermark is a lower bound,
// one left behind by a crash is moved on again by the events that follow,
// and timers it fires again find their state moved on.
func (p *Pipeline) finish(ctx context.Context, b *batch, clocks map[topicPartition]*clock) error {
	raises := p.unstoredOf(clocks)
	if err := p.commitEffects(ctx, b.out, b.emitted, b.users, raises); err != nil {
		return err
	}
	p.wmStoreFailing.Store(false)
	p.keepAll(b.owners, b.users)
	// Counted once the batch is durable, with what it did: a retried
	// batch counts once, and received never trails applied.
	countReceived(p.o.Metrics, b.recs)
	b.t.record(p.o.Metrics, p.counters)
	p.wmMu.Lock()
	defer p.wmMu.Unlock()
	for _, r := range raises {
		p.stored(topicPartition{r.Topic, r.Partition}, r.At)
	}
	for _, c := range clocks {
		if c.wm > c.start && c.wm != noWatermark {
			p.wms[c.tp] = c.wm
			p.unstored[c.tp] = c.wm
		}
	}
	return nil
}

// unstoredOf returns the clocks' partitions' watermarks not stored yet.
func (p *Pipeline) unstoredOf(clocks map[topicPartition]*clock) []state.Watermark {
	p.wmMu.Lock()
	defer p.wmMu.Unlock()
	var raises []state.Watermark
	for tp := range clocks {
		if wm, ok := p.unstored[tp]; ok {
			raises = append(raises, state.Watermark{Topic: tp.topic, Partition: tp.partition, At: wm})
		}
	}
	return raises
}

// storeWatermark stores the partition's watermark if it has moved since it
// was last stored.
func (p *Pipeline) storeWatermark(ctx context.Context, tp topicPartition) error {
	p.wmMu.Lock()
	wm, ok := p.unstored[tp]
	p.wmMu.Unlock()
	if !ok {
		return nil
	}
	start := time.Now()
	err := p.o.Store.RaiseWatermark(ctx, tp.topic, tp.partition, wm)
	p.o.Metrics.RedisSeconds.WithLabelValues("watermark").Observe(time.Since(start).Seconds())
	p.wmStoreFailing.Store(err != nil)
	if err != nil {
		return err
	}
	p.wmMu.Lock()
	defer p.wmMu.Unlock()
	p.stored(tp, wm)
	return nil
}

// stored notes that tp's watermark wm is in Redis: it is no longer unstored
// unless a later batch moved it on meanwhile. The caller holds wmMu.
func (p *Pipeline) stored(tp topicPartition, wm int64) {
	if p.unstored[tp] == wm {
		delete(p.unstored, tp)
	}
}

// commitEffects makes a batch's effects durable in the order that keeps
// replays safe: alerts and dead letters acknowledged by Kafka and the
// negative chats pushed to the support queue, then, in one Redis round
// trip, timers (hints: a timer that fires early finds nothing due in the
// state) and earlier batches' watermarks, followed by the state, whose
// fence marks the events applied. The push and Kafka's acknowledgement
// are awaited together, not one after the other: pushing is idempotent,
// so a batch retried after either failed pushes again, and a crash before
// the state write replays both.
func (p *Pipeline) commitEffects(ctx context.Context, out []*kgo.Record, alerts []*schemas.Alert, users map[string]*user, raises []state.Watermark) error {
	var pushErr error
	var pushed chan struct{}
	var queued []*schemas.Alert
	if p.o.Queue != nil {
		queued = negativeChats(alerts)
	}
	if len(queued) > 0 {
		pushed = make(chan struct{})
		go func() {
			defer close(pushed)
			start := time.Now()
			if pushErr = p.o.Queue.Push(ctx, queued); pushErr == nil {
				p.o.Metrics.RedisSeconds.WithLabelValues("queue").Observe(time.Since(start).Seconds())
			}
		}()
	}
	var pubErr error
	if len(out) > 0 {
		start := time.Now()
		if pubErr = p.o.Publisher.Publish(ctx, out); pubErr == nil {
			p.o.Metrics.PublishSeconds.Observe(time.Since(start).Seconds())
		}
	}
	if pushed != nil {
		<-pushed // bounded by ctx and Redis's timeouts, like Publish
	}
	if pubErr != nil {
		return errors.Join(fmt.Errorf("publish alerts: %w", pubErr), pushErr)
	}
	if pushErr != nil {
		return pushErr
	}
	var timers []state.Timer
	for id, u := range users {
		if (u.sides[0].dirty || u.reschedule) && u.timerIndex != "" {
			timers = append(timers, state.Timer{Index: u.timerIndex, User: id, Due: p.nextDue(u)})
		}
	}
	return p.save(ctx, timers, users, raises)
}

// negativeChats are the alerts the support queue takes.
func negativeChats(alerts []*schemas.Alert) []*schemas.Alert {
	var out []*schemas.Alert
	for _, a := range alerts {
		if a.Type == schemas.AlertNegativeChat {
			out = append(out, a)
		}
	}
	return out
}

// nextDue is when the user's clickstream side needs attention without a
// new event: the earliest deadline of the timed processors. 0: never.
func (p *Pipeline) nextDue(u *user) int64 {
	var due int64
	for _, s := range p.stages {
		if s.timed == nil {
			continue
		}
		if d := s.timed.NextDue(u.User); d > 0 && (due == 0 || d < due) {
			due = d
		}
	}
	return due
}

// applyEvent runs the processors of the event's stream on it, in order;
// the first failure stops the rest.
func (p *Pipeline) applyEvent(u *user, ev event) (processors.Effects, error) {
	var all processors.Effects
	stream := ev.Stream()
	for _, s := range p.stages {
		if s.Stream() != stream {
			continue
		}
		eff, err := s.step.Apply(u.User, ev.Event)
		all.Add(eff)
		if err != nil {
			return all, err
		}
	}
	return all, nil
}

// fire runs the timed processors at event time at, in order, each seeing
// what the ones before it did.
func (p *Pipeline) fire(u *user, at int64) (processors.Effects, error) {
	var all processors.Effects
	for _, s := range p.stages {
		if s.timed == nil {
			continue
		}
		eff, err := s.step.Fire(u.User, at, all)
		all.Add(eff)
		if err != nil {
			return all, err
		}
	}
	return all, nil
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
		ev.Click, ev.Role, at = &c, p.o.Vocabulary.RoleOf(c.Type), c.EventTime
	case p.o.Topics.Chat:
		var m schemas.ChatMessage
		if p.o.ChatInput != nil {
			m, err = p.o.ChatInput.Chat(r.Value)
		} else {
			m, err = p.o.Validator.DecodeChat(r.Value)
		}
		ev.Chat, at = &m, m.EventTime
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
		if ev.Click != nil {
			ev.originalUserID, ev.Click.UserID = ev.Click.UserID, p.o.Pseudonymizer.ID(ev.Click.UserID)
		} else {
			ev.originalUserID, ev.Chat.UserID = ev.Chat.UserID, p.o.Pseudonymizer.ID(ev.Chat.UserID)
		}
	}
	return ev, "", ""
}

// EventTime is a record's event time (ms), for the consumer's merge of
// the two input topics; 0 when it has none (the record then goes first,
// and Process dead-letters it). cxstream's own messages are read by a
// scan of their top-level members; other formats are decoded.
func (p *Pipeline) EventTime(r *kgo.Record) int64 {
	own := (r.Topic == p.o.Topics.Clickstream && (p.o.ClickInput == nil || p.o.ClickInput.Format() == ingest.FormatCxstream)) ||
		(r.Topic == p.o.Topics.Chat && (p.o.ChatInput == nil || p.o.ChatInput.Format() == ingest.FormatCxstream))
	if own {
		if at, ok := schemas.EventTime(r.Value); ok {
			return at
		}
	}
	ev, reason, _ := p.decode(r, p.o.Now())
	if reason != "" {
		return 0
	}
	return ev.Time()
}

// load reads the users' state. With an owner, the documents of the
// owner's stream come from the cache where it has them (taken out until
// the batch is durable), and only the rest from Redis.
func (p *Pipeline) load(ctx context.Context, ids []string, owners owners, queries []state.DueQuery) (map[string]*user, [][]state.DueTimer, error) {
	var cached map[string]cachedDoc
	var known map[string]state.Side
	for _, id := range ids {
		if o := owners.of(id); o != nil {
			if d, ok := p.cache.take(o.tp, id); ok {
				if cached == nil {
					cached = make(map[string]cachedDoc, len(ids))
					known = make(map[string]state.Side, len(ids))
				}
				cached[id] = d
				known[id] = storeSides[sideIndex(o.stream)]
				if d.otherOwned {
					known[id] = state.Both
				}
			}
		}
	}
	start := time.Now()
	docs, due, err := p.o.Store.LoadWithDue(ctx, ids, known, queries)
	p.o.Metrics.RedisSeconds.WithLabelValues("load").Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, nil, err
	}
	users := make(map[string]*user, len(ids))
	all := make([]user, len(ids)) // one allocation for the batch's users
	for i, id := range ids {
		u := &all[i]
		u.docs = docs[id]
		d, hit := cached[id]
		u.cached = hit
		own, sameOther := -1, false
		if hit {
			o := owners.of(id) // not nil: the entry came from its cache
			own = sideIndex(o.stream)
			if d.otherOwned {
				// This worker wrote the other document last (see
				// cachedDoc.otherOwned): it was not read.
				*u.doc(1 - own) = state.Doc{Version: d.otherVersion, Data: d.otherData, TTLSetAt: d.otherTTLSetAt}
				u.otherOwned = true
			}
			other := u.doc(1 - own)
			if sameOther = d.otherOwned || (other.Version == d.otherVersion && bytes.Equal(other.Data, d.otherData)); !sameOther {
				for j, proc := range p.procs {
					if proc.Stream() != o.stream {
						d.states[j] = nil // changed since: decoded below
					}
				}
			}
		}
		u.User = processors.NewUser(id, p.procs, d.states) // fills the states the cache lacks
		for i, data := range [2][]byte{u.docs.Click.Data, u.docs.Chat.Data} {
			switch {
			case i == own:
				u.sides[i], u.encoded[i] = d.side, d.encoded
				u.doc(i).Version, u.doc(i).TTLSetAt = d.version, d.ttlSetAt
				continue
			case hit && sameOther:
				u.sides[i], u.encoded[i] = d.otherSide, len(data)
				continue
			}
			stream := processors.Clicks
			if i == 1 {
				stream = processors.Chats
			}
			u.encoded[i] = len(data)
			if err := decodeDoc(data, stream, p.procs, u.States(), &u.sides[i]); err != nil {
				return nil, nil, fmt.Errorf("user state %s: %w", storeSides[i], err)
			}
		}
		users[id] = u
	}
	return users, due, nil
}

func (p *Pipeline) save(ctx context.Context, timers []state.Timer, users map[string]*user, raises []state.Watermark) error {
	var writes []state.Write
	var written []*state.Doc // the documents the writes move on, in the order of writes
	for id, u := range users {
		for i := range u.sides {
			if !u.sides[i].dirty {
				continue
			}
			stream, doc := processors.Clicks, u.doc(i)
			if i == 1 {
				stream = processors.Chats
			}
			data, err := encodeDoc(p.o.StateEncoding, stream, p.procs, u.States(), &u.sides[i], u.encoded[i])
			if err != nil {
				return fmt.Errorf("encode state: %w", err)
			}
			u.encoded[i], u.written[i] = len(data), data
			writes = append(writes, state.Write{User: id, Side: storeSides[i], Expect: doc.Version, Data: data, TTLSetAt: doc.TTLSetAt})
			written = append(written, doc)
		}
	}
	start := time.Now()
	err := p.o.Store.SaveWithTimers(ctx, timers, writes, raises...)
	p.o.Metrics.RedisSeconds.WithLabelValues("save").Observe(time.Since(start).Seconds())
	if errors.Is(err, state.ErrConflict) {
		p.o.Metrics.StateConflicts.Inc()
	}
	if err == nil {
		for k, d := range written {
			d.Version++ // as the state script did
			d.TTLSetAt = writes[k].TTLSetAt
		}
	}
	return err
}
