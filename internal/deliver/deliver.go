// Package deliver sends alerts from the alert topic to webhooks and Slack
// incoming webhooks: `cxstream deliver`, a process of its own, so a slow
// receiver never stalls the processor.
//
// A consumer group reads the alert topic. Each alert goes to every
// destination whose filters (type, minimum priority) accept it, as a
// signed JSON POST (webhook) or a short text (Slack), retried with
// exponential backoff and jitter; after max_attempts failures, or at once
// for a rejection (4xx), it goes to the destination's dead-letter topic
// with the original bytes and headers naming the reason.
//
// Delivery is at least once: a record's offset is committed only after
// every destination has delivered or dead-lettered it, so a crash or a
// rebalance delivers again, with the same alert_id (body and header) for
// the receiver to drop. Each destination has one delivery in flight per
// user (a lane): a user's alerts arrive in topic order, while different
// users proceed in parallel, up to a bound on concurrent requests.
package deliver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/schemas"
)

// Kind of destination.
type Kind string

// Kinds of destination.
const (
	KindWebhook Kind = "webhook" // signed alert.v2 JSON
	KindSlack   Kind = "slack"   // Slack incoming webhook: {"text": ...}
)

// Destination is one receiver, with its secrets resolved.
type Destination struct {
	Name string
	Kind Kind
	// URL is never logged (a Slack webhook URL is a credential).
	URL string
	// Secret signs webhook bodies; required for webhooks.
	Secret []byte
	// Types: only these alert types (empty: all).
	Types []string
	// MinPriority: only alerts at least this urgent (empty: all).
	MinPriority     schemas.Priority
	MaxAttempts     int
	Timeout         time.Duration
	DeadLetterTopic string
}

func (d *Destination) accepts(a schemas.Alert) bool {
	if len(d.Types) > 0 && !contains(d.Types, a.Type) {
		return false
	}
	return d.MinPriority == "" || a.Priority.Rank() >= d.MinPriority.Rank()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Options build a Deliverer. KafkaOpts, Topic, Group and Destinations are
// required; the rest have defaults.
type Options struct {
	// KafkaOpts connect to the cluster (seeds, TLS, SASL); the consumer
	// group settings are added.
	KafkaOpts    []kgo.Opt
	Topic        string
	Group        string
	Destinations []Destination
	// FromBeginning: a group without committed offsets starts at the
	// oldest alert instead of new ones.
	FromBeginning bool
	// Concurrency bounds HTTP requests in flight (default 32).
	Concurrency int
	// MaxPending bounds records read and not finished (default 5000).
	MaxPending int
	// InitialBackoff (default 500 ms) doubles per failure up to
	// MaxBackoff (default 1 min), each wait jittered by +-50%.
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	// CommitInterval (default 1 s).
	CommitInterval time.Duration
	// ShutdownTimeout: deliveries in flight get this long after the
	// context ends (default 15 s); what is left is delivered again by
	// the next run.
	ShutdownTimeout time.Duration
	// Registry receives the metrics (default: a new one).
	Registry prometheus.Registerer
	// HTTPClient (default: no redirects, pooled connections).
	HTTPClient *http.Client
	Logger     *zap.Logger
}

// ErrConfig matches every invalid Options.
var ErrConfig = errors.New("deliver: invalid options")

func (o *Options) defaults() {
	if o.Concurrency == 0 {
		o.Concurrency = 32
	}
	if o.MaxPending == 0 {
		o.MaxPending = 5000
	}
	if o.InitialBackoff == 0 {
		o.InitialBackoff = 500 * time.Millisecond
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = time.Minute
	}
	if o.CommitInterval == 0 {
		o.CommitInterval = time.Second
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 15 * time.Second
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{
			Transport: &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConns: o.Concurrency * 2,
				MaxIdleConnsPerHost: o.Concurrency, IdleConnTimeout: 90 * time.Second, TLSHandshakeTimeout: 10 * time.Second},
			// A redirect is a configuration error, and following one
			// would send the signed body somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	for i := range o.Destinations {
		d := &o.Destinations[i]
		if d.Kind == "" {
			d.Kind = KindWebhook
		}
		if d.MaxAttempts == 0 {
			d.MaxAttempts = 12
		}
		if d.Timeout == 0 {
			d.Timeout = 10 * time.Second
		}
		if d.DeadLetterTopic == "" {
			d.DeadLetterTopic = "cx.deliver.deadletter." + d.Name
		}
	}
}

func (o *Options) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case o.Topic == "" || o.Group == "":
		return bad("topic and group are required")
	case len(o.Destinations) == 0:
		return bad("no destinations configured (deliver.destinations)")
	case o.Concurrency < 1 || o.MaxPending < 1:
		return bad("concurrency and max_pending must be at least 1")
	case o.InitialBackoff <= 0 || o.MaxBackoff < o.InitialBackoff:
		return bad("initial_backoff must be positive and at most max_backoff")
	case o.CommitInterval <= 0 || o.ShutdownTimeout <= 0:
		return bad("commit_interval and shutdown_timeout must be positive")
	}
	names := map[string]bool{}
	for _, d := range o.Destinations {
		switch {
		case d.Name == "" || names[d.Name]:
			return bad("destination names must be set and distinct")
		case d.Kind != KindWebhook && d.Kind != KindSlack:
			return bad("destination %s: kind must be webhook or slack", d.Name)
		case d.Kind == KindWebhook && len(d.Secret) == 0:
			return bad("destination %s: a webhook needs a secret", d.Name)
		case d.URL == "":
			return bad("destination %s: url is required", d.Name)
		case d.MaxAttempts < 1 || d.Timeout <= 0:
			return bad("destination %s: max_attempts and timeout must be positive", d.Name)
		case d.MinPriority != "" && d.MinPriority.Rank() < 0:
			return bad("destination %s: unknown min_priority", d.Name)
		}
		names[d.Name] = true
	}
	return nil
}

// Dead-letter headers, beside the original record's own.
const (
	HeaderDLReason      = "cx-reason"
	HeaderDLDetail      = "cx-detail"
	HeaderDLDestination = "cx-destination"
	HeaderDLAttempts    = "cx-attempts"
	HeaderDLSourceTopic = "cx-source-topic"
	HeaderDLSourcePart  = "cx-source-partition"
	HeaderDLSourceOff   = "cx-source-offset"
	HeaderDLFailedAt    = "cx-failed-at"
	HeaderDLAlertID     = "cx-alert-id"
)

type topicPartition struct {
	topic     string
	partition int32
}

// partition is the state of one assigned partition: the records read and
// not yet committable, in offset order.
type partition struct {
	tp     topicPartition
	ctx    context.Context
	cancel context.CancelFunc
	tasks  sync.WaitGroup // queued and running tasks of this partition
	order  []*record      // read, not yet below the commit mark
	// next is the offset to commit (all before it are finished); -1
	// until the first record finishes.
	next      int64
	epoch     int32
	committed int64
}

// record is one alert record read. Once done, it lets go of the Kafka
// record: finished records wait in their partition's order behind an
// unfinished one (a long retry) only as an offset.
type record struct {
	r       *kgo.Record // nil once done
	p       *partition
	offset  int64
	epoch   int32
	pending int // destinations not finished
	done    bool
}

type task struct {
	rec   *record
	dest  *Destination
	id    string // alert_id
	event string // alert or erasure
	body  []byte
}

type laneKey struct {
	dest string
	tp   topicPartition
	user string
}

type lane struct{ queue []*task }

type outcome int

const (
	abandoned outcome = iota // cancelled: delivered again after restart or rebalance
	delivered
	deadLettered
)

// Deliverer consumes the alert topic and delivers. Create with New, run
// with Run once.
type Deliverer struct {
	o         Options
	cl        *kgo.Client
	validator *schemas.Validator
	m         *Metrics
	dests     []*Destination

	sem   chan struct{} // HTTP requests in flight
	slots chan struct{} // records pending

	workCtx    context.Context
	cancelWork context.CancelFunc
	work       sync.WaitGroup // tasks not finished
	laneWG     sync.WaitGroup // lane goroutines

	mu    sync.Mutex
	parts map[topicPartition]*partition
	lanes map[laneKey]*lane
}

// New checks the options, connects and checks that the alert topic and
// every dead-letter topic exist.
func New(ctx context.Context, o Options) (*Deliverer, error) {
	o.defaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	v, err := schemas.NewValidator(0)
	if err != nil {
		return nil, err
	}
	d := &Deliverer{o: o, validator: v, sem: make(chan struct{}, o.Concurrency), slots: make(chan struct{}, o.MaxPending),
		parts: map[topicPartition]*partition{}, lanes: map[laneKey]*lane{}}
	names := make([]string, 0, len(o.Destinations))
	for i := range o.Destinations {
		d.dests = append(d.dests, &d.o.Destinations[i])
		names = append(names, o.Destinations[i].Name)
	}
	d.m = newMetrics(o.Registry, names)
	d.workCtx, d.cancelWork = context.WithCancel(context.Background())
	start := kgo.NewOffset().AtEnd()
	if o.FromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	opts := append(append([]kgo.Opt{}, o.KafkaOpts...),
		kgo.ConsumerGroup(o.Group),
		kgo.ConsumeTopics(o.Topic),
		kgo.ConsumeResetOffset(start),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsAssigned(d.assigned),
		kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { d.dropped(ctx, m, true) }),
		kgo.OnPartitionsLost(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) { d.dropped(ctx, m, false) }),
	)
	if d.cl, err = kgo.NewClient(opts...); err != nil {
		d.cancelWork()
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	if err := d.checkTopics(ctx); err != nil {
		d.cl.Close()
		d.cancelWork()
		return nil, err
	}
	return d, nil
}

// Metrics are the deliverer's series (also on Options.Registry).
func (d *Deliverer) Metrics() *Metrics { return d.m }

// Ready reports whether a Kafka broker answers (for /readyz).
func (d *Deliverer) Ready(ctx context.Context) error {
	if err := d.cl.Ping(ctx); err != nil {
		return fmt.Errorf("kafka: %w", err)
	}
	return nil
}

func (d *Deliverer) checkTopics(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	topics := []string{d.o.Topic}
	for _, dest := range d.dests {
		topics = append(topics, dest.DeadLetterTopic)
	}
	details, err := kadm.NewClient(d.cl).ListTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("kafka: list topics: %w", err)
	}
	for _, t := range topics {
		if td, ok := details[t]; !ok || td.Err != nil {
			return fmt.Errorf("kafka: topic %s does not exist (create it before starting deliver)", t)
		}
	}
	return nil
}

// Run delivers until ctx ends, then finishes within ShutdownTimeout (plus
// a few seconds to commit and leave the group) and closes the client.
func (d *Deliverer) Run(ctx context.Context) error {
	commitCtx, stopCommits := context.WithCancel(context.Background())
	var commitWG sync.WaitGroup
	commitWG.Add(1)
	go func() {
		defer commitWG.Done()
		t := time.NewTicker(d.o.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-commitCtx.Done():
				return
			case <-t.C:
				d.commit(commitCtx, nil)
			}
		}
	}()
	for ctx.Err() == nil {
		if !d.acquireSlot(ctx) {
			break
		}
		n := 1 + d.tryAcquireSlots(999)
		fetches := d.cl.PollRecords(ctx, n)
		if fetches.IsClientClosed() {
			d.releaseSlots(n)
			break
		}
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				d.o.Logger.Warn("fetch failed", zap.String("topic", t), zap.Int32("partition", p), zap.Error(err))
			}
		})
		recs := fetches.Records()
		d.releaseSlots(n - len(recs))
		for _, r := range recs {
			d.dispatch(r)
		}
		d.cl.AllowRebalance()
	}
	stopCommits() // the shutdown commits last, before closing the client
	commitWG.Wait()
	d.shutdown()
	return nil
}

func (d *Deliverer) shutdown() {
	drained := make(chan struct{})
	go func() { d.work.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(d.o.ShutdownTimeout):
		d.o.Logger.Warn("shutdown timeout: deliveries still in flight are left for the next run")
	}
	d.cancelWork()
	<-drained // cancelled tasks end at once
	d.laneWG.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d.commit(ctx, nil)
	closed := make(chan struct{})
	go func() { d.cl.Close(); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		d.o.Logger.Warn("kafka client did not close in time")
	}
}

func (d *Deliverer) acquireSlot(ctx context.Context) bool {
	select {
	case d.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (d *Deliverer) tryAcquireSlots(max int) int {
	n := 0
	for n < max {
		select {
		case d.slots <- struct{}{}:
			n++
		default:
			return n
		}
	}
	return n
}

func (d *Deliverer) releaseSlots(n int) {
	for range n {
		<-d.slots
	}
}

func (d *Deliverer) assigned(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for topic, ps := range m {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			ctx, cancel := context.WithCancel(d.workCtx)
			d.parts[tp] = &partition{tp: tp, ctx: ctx, cancel: cancel, next: -1, committed: -1}
		}
	}
}

// dropped handles revoked (commit what is finished) and lost (commit
// nothing) partitions: their deliveries are cancelled and awaited; the
// new owner delivers the rest again.
func (d *Deliverer) dropped(ctx context.Context, m map[string][]int32, commit bool) {
	var ps []*partition
	d.mu.Lock()
	for topic, parts := range m {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			if st := d.parts[tp]; st != nil {
				st.cancel()
				ps = append(ps, st)
				delete(d.parts, tp)
			}
		}
	}
	d.mu.Unlock()
	for _, p := range ps {
		p.tasks.Wait()
	}
	if commit && len(ps) > 0 {
		d.commit(ctx, ps)
	}
	d.mu.Lock()
	released := 0
	for _, p := range ps {
		for _, rec := range p.order {
			if !rec.done {
				released++
			}
		}
		p.order = nil
	}
	d.mu.Unlock()
	d.m.Pending.Sub(float64(released))
	d.releaseSlots(released)
}

// commit commits the finished prefix of the given partitions (nil: all
// assigned).
func (d *Deliverer) commit(ctx context.Context, only []*partition) {
	d.mu.Lock()
	if only == nil {
		for _, p := range d.parts {
			only = append(only, p)
		}
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	var todo []*partition
	var marks []int64
	for _, p := range only {
		if p.next > p.committed {
			if offsets[p.tp.topic] == nil {
				offsets[p.tp.topic] = map[int32]kgo.EpochOffset{}
			}
			offsets[p.tp.topic][p.tp.partition] = kgo.EpochOffset{Epoch: p.epoch, Offset: p.next}
			todo = append(todo, p)
			marks = append(marks, p.next)
		}
	}
	d.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	var cerr error
	d.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		cerr = err
		if err == nil {
			cerr = commitResponseError(resp)
		}
	})
	if cerr != nil {
		d.m.Commits.WithLabelValues("error").Inc()
		if !errors.Is(cerr, context.Canceled) {
			d.o.Logger.Warn("offset commit failed", zap.Error(cerr))
		}
		return
	}
	d.m.Commits.WithLabelValues("ok").Inc()
	d.mu.Lock()
	for i, p := range todo {
		p.committed = max(p.committed, marks[i])
	}
	d.mu.Unlock()
}

// dispatch turns one record into a task per accepting destination and
// queues each on its lane.
func (d *Deliverer) dispatch(r *kgo.Record) {
	d.mu.Lock()
	p := d.parts[topicPartition{r.Topic, r.Partition}]
	if p == nil || p.ctx.Err() != nil {
		d.mu.Unlock()
		d.releaseSlots(1) // not ours any more: the owner delivers it
		return
	}
	rec := &record{r: r, p: p, offset: r.Offset, epoch: r.LeaderEpoch}
	p.order = append(p.order, rec)
	d.m.Pending.Inc()
	d.mu.Unlock()

	tasks := d.tasksFor(rec)
	d.mu.Lock()
	defer d.mu.Unlock()
	if p.ctx.Err() != nil {
		return // dropped meanwhile: dropped released the record's slot
	}
	rec.pending = len(tasks)
	if len(tasks) == 0 {
		d.finishRecordLocked(rec)
		return
	}
	for _, t := range tasks {
		p.tasks.Add(1)
		d.work.Add(1)
		k := laneKey{dest: t.dest.Name, tp: p.tp, user: string(r.Key)}
		l := d.lanes[k]
		if l == nil {
			l = &lane{}
			d.lanes[k] = l
			d.laneWG.Add(1)
			go d.runLane(k, l)
		}
		l.queue = append(l.queue, t)
	}
}

func (d *Deliverer) tasksFor(rec *record) []*task {
	r := rec.r
	var tasks []*task
	if r.Value == nil {
		if !isErasure(r) {
			return nil // a compaction tombstone: nothing to tell anyone
		}
		id, body := erasureBody(string(r.Key), r.Timestamp.UnixMilli())
		for _, dest := range d.dests {
			if dest.Kind != KindWebhook {
				d.m.Filtered.WithLabelValues(dest.Name).Inc() // a Slack post cannot be unsent
				continue
			}
			tasks = append(tasks, &task{rec: rec, dest: dest, id: id, event: "erasure", body: body})
		}
		return tasks
	}
	a, err := d.validator.DecodeAlert(r.Value)
	if err != nil {
		d.m.Invalid.Inc()
		d.o.Logger.Warn("not an alert, skipped", zap.String("topic", r.Topic), zap.Int32("partition", r.Partition),
			zap.Int64("offset", r.Offset), zap.Error(err))
		return nil
	}
	var hook, slack []byte
	for _, dest := range d.dests {
		if !dest.accepts(a) {
			d.m.Filtered.WithLabelValues(dest.Name).Inc()
			continue
		}
		t := &task{rec: rec, dest: dest, id: a.AlertID, event: "alert"}
		if dest.Kind == KindSlack {
			if slack == nil {
				slack = slackBody(a)
			}
			t.body = slack
		} else {
			if hook == nil {
				hook = webhookBody(a, r.Value, schemas.AlertSchemaOf(r.Value) == schemas.AlertV2)
			}
			t.body = hook
		}
		tasks = append(tasks, t)
	}
	return tasks
}

func isErasure(r *kgo.Record) bool {
	for _, h := range r.Headers {
		if h.Key == "cx-erasure" {
			return string(h.Value) == "true"
		}
	}
	return false
}

// runLane delivers one user's tasks for one destination, in order, one at
// a time, and ends when the lane is empty.
func (d *Deliverer) runLane(k laneKey, l *lane) {
	defer d.laneWG.Done()
	for {
		d.mu.Lock()
		if len(l.queue) == 0 {
			delete(d.lanes, k)
			d.mu.Unlock()
			return
		}
		t := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		d.mu.Unlock()
		out := abandoned
		if t.rec.p.ctx.Err() == nil {
			out = d.deliver(t)
		}
		d.finishTask(t, out)
	}
}

func (d *Deliverer) finishTask(t *task, out outcome) {
	d.mu.Lock()
	if out != abandoned {
		t.rec.pending--
		if t.rec.pending == 0 {
			d.finishRecordLocked(t.rec)
		}
	}
	d.mu.Unlock()
	t.rec.p.tasks.Done()
	d.work.Done()
}

// finishRecordLocked marks a record finished everywhere, frees its slot
// and moves the partition's commit mark over the finished prefix.
func (d *Deliverer) finishRecordLocked(rec *record) {
	rec.done, rec.r = true, nil
	d.m.Pending.Dec()
	<-d.slots
	p := rec.p
	i := 0
	for i < len(p.order) && p.order[i].done {
		p.next, p.epoch = p.order[i].offset+1, p.order[i].epoch
		i++
	}
	clear(p.order[:i])
	p.order = p.order[i:]
}

// attemptResult is one HTTP attempt's result.
type attemptResult struct {
	reason     string // failure class; "" when delivered
	detail     string // status or error, never the URL or the body
	permanent  bool
	retryAfter time.Duration
}

// deliver tries until delivered, dead-lettered, or cancelled.
func (d *Deliverer) deliver(t *task) outcome {
	ctx := t.rec.p.ctx
	bo := &backoff.ExponentialBackOff{InitialInterval: d.o.InitialBackoff, RandomizationFactor: 0.5, Multiplier: 2, MaxInterval: d.o.MaxBackoff}
	bo.Reset()
	name := t.dest.Name
	for attempt := 1; ; attempt++ {
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			return abandoned
		}
		d.m.InFlight.Inc()
		res := d.attempt(ctx, t, attempt)
		d.m.InFlight.Dec()
		<-d.sem
		if res.reason == "" {
			d.m.Delivered.WithLabelValues(name).Inc()
			d.m.Latency.WithLabelValues(name).Observe(time.Since(t.rec.r.Timestamp).Seconds())
			return delivered
		}
		if ctx.Err() != nil {
			return abandoned // our shutdown or rebalance, not the receiver's failure
		}
		d.m.Failures.WithLabelValues(name, res.reason).Inc()
		if res.permanent || attempt >= t.dest.MaxAttempts {
			return d.deadLetter(ctx, t, res, attempt)
		}
		d.m.Retries.WithLabelValues(name).Inc()
		wait := bo.NextBackOff()
		if res.retryAfter > wait {
			wait = min(res.retryAfter, d.o.MaxBackoff)
		}
		if !sleep(ctx, wait) {
			return abandoned
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func (d *Deliverer) attempt(ctx context.Context, t *task, n int) attemptResult {
	ctx, cancel := context.WithTimeout(ctx, t.dest.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.dest.URL, bytes.NewReader(t.body))
	if err != nil {
		return attemptResult{reason: FailConnection, detail: "bad request", permanent: true}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "cxstream-deliver")
	if t.dest.Kind == KindWebhook {
		ts := time.Now().Unix()
		req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
		req.Header.Set(HeaderSignature, Sign(t.dest.Secret, ts, t.body))
		req.Header.Set(HeaderAlertID, t.id)
		req.Header.Set(HeaderIdempotencyKey, t.id)
		req.Header.Set(HeaderEvent, t.event)
		req.Header.Set(HeaderAttempt, strconv.Itoa(n))
	}
	resp, err := d.o.HTTPClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
			return attemptResult{reason: FailTimeout, detail: "no answer within " + t.dest.Timeout.String()}
		}
		return attemptResult{reason: FailConnection, detail: errorWithoutURL(err)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused; never logged
	_ = resp.Body.Close()
	code := resp.StatusCode
	detail := "HTTP " + strconv.Itoa(code)
	switch {
	case code >= 200 && code < 300:
		return attemptResult{}
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout:
		return attemptResult{reason: FailStatus429, detail: detail, retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case code >= 500:
		return attemptResult{reason: FailStatus5xx, detail: detail, retryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	case code >= 400:
		return attemptResult{reason: FailStatus4xx, detail: detail, permanent: true}
	}
	return attemptResult{reason: FailStatus3xx, detail: detail, permanent: true}
}

func commitResponseError(resp *kmsg.OffsetCommitResponse) error {
	if resp == nil {
		return nil
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return err
			}
		}
	}
	return nil
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// errorWithoutURL drops the URL net/http puts in its errors: a Slack
// webhook URL is a credential.
func errorWithoutURL(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return strings.TrimSpace(err.Error())
}

// retryAfter reads Retry-After in seconds (an HTTP date is rare from
// webhook receivers and ignored).
func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || s <= 0 {
		return 0
	}
	return time.Duration(s) * time.Second
}

// deadLetter writes the original record to the destination's dead-letter
// topic, retrying until Kafka has it or the work is cancelled (then the
// alert is delivered again later: nothing is lost).
func (d *Deliverer) deadLetter(ctx context.Context, t *task, res attemptResult, attempts int) outcome {
	r := t.rec.r
	headers := append(append([]kgo.RecordHeader{}, r.Headers...),
		kgo.RecordHeader{Key: HeaderDLReason, Value: []byte(res.reason)},
		kgo.RecordHeader{Key: HeaderDLDetail, Value: []byte(res.detail)},
		kgo.RecordHeader{Key: HeaderDLDestination, Value: []byte(t.dest.Name)},
		kgo.RecordHeader{Key: HeaderDLAttempts, Value: []byte(strconv.Itoa(attempts))},
		kgo.RecordHeader{Key: HeaderDLSourceTopic, Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: HeaderDLSourcePart, Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: HeaderDLSourceOff, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: HeaderDLFailedAt, Value: []byte(strconv.FormatInt(time.Now().UnixMilli(), 10))},
		kgo.RecordHeader{Key: HeaderDLAlertID, Value: []byte(t.id)},
	)
	dl := &kgo.Record{Topic: t.dest.DeadLetterTopic, Key: r.Key, Value: r.Value, Headers: headers}
	for {
		err := d.cl.ProduceSync(ctx, dl).FirstErr()
		if err == nil {
			d.m.DeadLettered.WithLabelValues(t.dest.Name).Inc()
			d.o.Logger.Warn("alert dead-lettered", zap.String("destination", t.dest.Name), zap.String("alert_id", t.id),
				zap.String("reason", res.reason), zap.String("detail", res.detail), zap.Int("attempts", attempts))
			return deadLettered
		}
		if ctx.Err() != nil {
			return abandoned
		}
		d.o.Logger.Warn("dead-letter produce failed, retrying", zap.String("destination", t.dest.Name), zap.Error(err))
		if !sleep(ctx, time.Second) {
			return abandoned
		}
	}
}
