// Package kafka is cxstream's Kafka I/O: a group consumer that runs one
// worker per assigned partition and commits only what the pipeline made
// durable, and the publisher that produces alerts and dead letters. The
// client options come from the runner (runner.KafkaOpts).
package kafka

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/metrics"
)

// TimerFunc is called every TimerInterval in the partition's worker,
// between batches, so it never races the partition's processing. idleFor
// is how long the partition has had no record while it has no lag (0
// while it has lag).
type TimerFunc func(ctx context.Context, topic string, partition int32, now time.Time, idleFor time.Duration) error

// ReleaseFunc is called when this instance stops working a partition
// (revoked or lost), after its worker stopped.
type ReleaseFunc func(topic string, partition int32)

// BatchFunc makes one partition's batch durable; the consumer commits the
// batch's offsets only after it returns nil, and retries it otherwise.
type BatchFunc func(ctx context.Context, recs []*kgo.Record) error

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	// MaxPollRecords bounds a poll, and with it a batch (default 2000).
	MaxPollRecords int
	// QueuedBatches per partition worker before the poll loop waits: the
	// bound on memory when processing falls behind (default 2).
	QueuedBatches int
	// ShutdownTimeout bounds how long a shutdown waits for batches in hand
	// (default 20s).
	ShutdownTimeout time.Duration
	// RetryBackoff is the first wait after a failed batch; it doubles up to
	// MaxRetryBackoff (defaults 100ms and 5s).
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// TimerInterval: how often each partition worker looks for due timers
	// (default 1s).
	TimerInterval time.Duration
	// CommitInterval: durable batches are marked and their offsets
	// committed this often, off the processing path (default 200ms); a
	// revoke or shutdown commits what is marked before letting go.
	CommitInterval time.Duration
}

func (o *ConsumerOptions) defaults() {
	if o.MaxPollRecords <= 0 {
		o.MaxPollRecords = 2000
	}
	if o.QueuedBatches <= 0 {
		o.QueuedBatches = 2
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 20 * time.Second
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 100 * time.Millisecond
	}
	if o.MaxRetryBackoff <= 0 {
		o.MaxRetryBackoff = 5 * time.Second
	}
	if o.TimerInterval <= 0 {
		o.TimerInterval = time.Second
	}
	if o.CommitInterval <= 0 {
		o.CommitInterval = 200 * time.Millisecond
	}
}

type topicPartition struct {
	topic     string
	partition int32
}

// Consumer consumes a group's partitions with one goroutine per assigned
// partition, started on assign and stopped and awaited on revoke.
type Consumer struct {
	process BatchFunc
	timers  TimerFunc
	release ReleaseFunc
	opts    ConsumerOptions
	log     *zap.Logger
	m       *metrics.Metrics

	// workCtx outlives the run context by up to ShutdownTimeout, so the
	// batch in hand can finish and commit after a shutdown signal.
	workCtx    context.Context
	cancelWork context.CancelFunc

	// started is closed when Run starts. A group client joins as soon as
	// it is created, so partitions may be assigned before the batch and
	// timer functions are set; their workers wait for it.
	started   chan struct{}
	startOnce sync.Once

	mu       sync.Mutex
	workers  map[topicPartition]*worker
	stalled  atomic.Int32
	joined   atomic.Bool
	failures failureLog
}

// NewConsumer returns a consumer. Its client must be built with the
// options from GroupOpts(c).
func NewConsumer(process BatchFunc, opts ConsumerOptions, log *zap.Logger, m *metrics.Metrics) *Consumer {
	opts.defaults()
	workCtx, cancel := context.WithCancel(context.Background())
	return &Consumer{process: process, opts: opts, log: log, m: m, workCtx: workCtx, cancelWork: cancel, workers: map[topicPartition]*worker{}, started: make(chan struct{}),
		failures: failureLog{log: log, every: 30 * time.Second}}
}

// SetBatchFunc sets the function that processes batches; call it before
// Run.
func (c *Consumer) SetBatchFunc(f BatchFunc) { c.process = f }

// SetTimerFunc sets the function that fires due timers; call it before Run.
func (c *Consumer) SetTimerFunc(f TimerFunc) { c.timers = f }

// SetReleaseFunc sets the function told of partitions this instance no
// longer works; call it before Run.
func (c *Consumer) SetReleaseFunc(f ReleaseFunc) { c.release = f }

// GroupOpts are the client options the consumer needs: committing only
// marked (durable) offsets, and the assign/revoke/lost callbacks.
func (c *Consumer) GroupOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.AutoCommitMarks(),
		kgo.AutoCommitInterval(c.opts.CommitInterval),
		kgo.AutoCommitCallback(func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
			if err == nil && resp != nil {
				for _, t := range resp.Topics {
					for _, p := range t.Partitions {
						if p.ErrorCode != 0 {
							err = kerr.ErrorForCode(p.ErrorCode)
						}
					}
				}
			}
			c.countCommit(err)
		}),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.OnPartitionsAssigned(c.assigned),
		kgo.OnPartitionsRevoked(c.revoked),
		kgo.OnPartitionsLost(c.lost),
	}
}

// Ready reports whether the consumer has joined its group and no partition
// is stuck retrying a batch.
func (c *Consumer) Ready(context.Context) error {
	if !c.joined.Load() {
		return errors.New("not in the consumer group yet")
	}
	if n := c.stalled.Load(); n > 0 {
		return errors.New("partitions stalled retrying a batch")
	}
	return nil
}

// Run polls until ctx is done, then stops fetching, lets the workers finish
// and commit the batch in hand within ShutdownTimeout, and leaves the
// group. The client is closed on return.
func (c *Consumer) Run(ctx context.Context, cl *kgo.Client) error {
	defer c.cancelWork()
	c.startOnce.Do(func() { close(c.started) })
	for {
		fetches := cl.PollRecords(ctx, c.opts.MaxPollRecords)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			break
		}
		fetches.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn("fetch error", zap.String("topic", topic), zap.Int32("partition", p), zap.Error(err))
			}
		})
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) == 0 {
				return
			}
			c.mu.Lock()
			w := c.workers[topicPartition{p.Topic, p.Partition}]
			c.mu.Unlock()
			if w == nil {
				return // revoked since the fetch; the next owner reads it again
			}
			w.highWatermark.Store(p.HighWatermark)
			select {
			case w.batches <- p.Records:
			case <-w.quit:
			case <-ctx.Done():
			}
		})
	}
	c.shutdown(cl)
	return nil
}

func (c *Consumer) shutdown(cl *kgo.Client) {
	timer := time.AfterFunc(c.opts.ShutdownTimeout, c.cancelWork)
	defer timer.Stop()
	c.mu.Lock()
	all := make(map[string][]int32)
	for tp := range c.workers {
		all[tp.topic] = append(all[tp.topic], tp.partition)
	}
	c.mu.Unlock()
	c.stopWorkers(all)
	c.commitMarked(cl)
	// Leaving the group hands the partitions over at once instead of after
	// the session timeout.
	leaveCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { cl.Close(); close(done) }()
	select {
	case <-done:
	case <-leaveCtx.Done():
		c.log.Warn("leaving the group timed out")
	}
}

func (c *Consumer) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	c.joined.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	for topic, parts := range assigned {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			if c.workers[tp] != nil {
				continue
			}
			w := &worker{c: c, cl: cl, tp: tp, batches: make(chan []*kgo.Record, c.opts.QueuedBatches), quit: make(chan struct{}), done: make(chan struct{})}
			c.workers[tp] = w
			go w.run()
		}
	}
	c.m.Partitions.Set(float64(len(c.workers)))
	c.log.Info("partitions assigned", zap.Any("partitions", assigned))
}

func (c *Consumer) revoked(_ context.Context, cl *kgo.Client, revoked map[string][]int32) {
	c.stopWorkers(revoked)
	// Commit what the stopped workers made durable before the partitions
	// move, so the next owner does not replay it.
	c.commitMarked(cl)
	c.log.Info("partitions revoked", zap.Any("partitions", revoked))
}

// lost stops the workers of partitions this instance no longer owns (its
// session expired, or it was fenced). Unlike a revoke nothing is
// committed: another member may already own them and have committed
// further; what the stopped workers made durable is fenced in the state.
func (c *Consumer) lost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	c.stopWorkers(lost)
	c.log.Warn("partitions lost", zap.Any("partitions", lost))
}

// commitMarked synchronously commits every marked offset.
func (c *Consumer) commitMarked(cl *kgo.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := cl.CommitMarkedOffsets(ctx)
	c.countCommit(err)
	if err != nil {
		// Not fatal: the batches are durable and fenced, so the next
		// owner's replay of them changes nothing.
		c.log.Warn("commit failed", zap.Error(err))
	}
}

func (c *Consumer) countCommit(err error) {
	if err != nil {
		c.m.Commits.WithLabelValues("error").Inc()
		return
	}
	c.m.Commits.WithLabelValues("ok").Inc()
}

// stopWorkers stops the given partitions' workers and waits for them: each
// finishes (or abandons, at the shutdown deadline) its batch in hand.
func (c *Consumer) stopWorkers(parts map[string][]int32) {
	var stopping []*worker
	c.mu.Lock()
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if w := c.workers[tp]; w != nil {
				delete(c.workers, tp)
				close(w.quit)
				stopping = append(stopping, w)
			}
		}
	}
	c.m.Partitions.Set(float64(len(c.workers)))
	c.mu.Unlock()
	for _, w := range stopping {
		<-w.done
		if c.release != nil {
			c.release(w.tp.topic, w.tp.partition)
		}
	}
}

type worker struct {
	// highWatermark is the partition's end offset at the last fetch.
	highWatermark atomic.Int64
	c             *Consumer
	cl            *kgo.Client
	tp            topicPartition
	batches       chan []*kgo.Record
	quit          chan struct{}
	done          chan struct{}
}

func (w *worker) run() {
	defer close(w.done)
	defer func() {
		// A revoked partition's series would otherwise freeze at their
		// last value.
		part := strconv.Itoa(int(w.tp.partition))
		w.c.m.LagRecords.DeleteLabelValues(w.tp.topic, part)
		w.c.m.LagSeconds.DeleteLabelValues(w.tp.topic, part)
		w.c.m.TimersPending.DeleteLabelValues(w.tp.topic, part)
	}()
	select {
	case <-w.c.started:
	case <-w.quit:
		return
	}
	tick := time.NewTicker(w.c.opts.TimerInterval)
	defer tick.Stop()
	lastRecord := time.Now() // no lag and nothing received since then: idle
	lastOffset := int64(-1)
	// Until a batch arrives the partition's end is unknown: a backlog
	// whose first fetch is slow must not look idle. atEnd asks the broker
	// (at most every few seconds) whether there is anything to read.
	var atEnd bool
	var askedAt time.Time
	for {
		// Quit wins over queued batches: they were not committed, so the
		// next owner of the partition reads them again.
		select {
		case <-w.quit:
			return
		default:
		}
		select {
		case <-w.quit:
			return
		case recs := <-w.batches:
			if !w.processWithRetry(recs) {
				return
			}
			last := recs[len(recs)-1]
			lastRecord, lastOffset = time.Now(), last.Offset
			// Durable: the offset may now be committed (in the background,
			// every CommitInterval).
			w.cl.MarkCommitRecords(last)
			part := strconv.Itoa(int(w.tp.partition))
			w.c.m.LagRecords.WithLabelValues(w.tp.topic, part).Set(float64(max(0, w.highWatermark.Load()-last.Offset-1)))
			w.c.m.LagSeconds.WithLabelValues(w.tp.topic, part).Set(time.Since(last.Timestamp).Seconds())
		case now := <-tick.C:
			if w.c.timers == nil {
				continue
			}
			var idleFor time.Duration
			if lastOffset < 0 && !atEnd && len(w.batches) == 0 && now.Sub(askedAt) >= 5*time.Second {
				askedAt = now
				atEnd = w.nothingToRead()
			}
			caughtUp := (lastOffset >= 0 && w.highWatermark.Load() <= lastOffset+1) || (lastOffset < 0 && atEnd)
			if len(w.batches) == 0 && caughtUp {
				idleFor = now.Sub(lastRecord)
			}
			if err := w.c.timers(w.c.workCtx, w.tp.topic, w.tp.partition, now, idleFor); err != nil && w.c.workCtx.Err() == nil {
				// The next tick tries again; the timers stay in Redis.
				w.c.log.Warn("timers failed", zap.String("topic", w.tp.topic), zap.Int32("partition", w.tp.partition), zap.Error(err))
			}
		}
	}
}

// nothingToRead reports whether the partition's end offset is where the
// group's committed offset (or the start) leaves it: no backlog.
func (w *worker) nothingToRead() bool {
	ctx, cancel := context.WithTimeout(w.c.workCtx, 2*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(w.cl).ListEndOffsets(ctx, w.tp.topic)
	if err != nil {
		return false
	}
	end, ok := ends.Lookup(w.tp.topic, w.tp.partition)
	if !ok || end.Err != nil {
		return false
	}
	if o, ok := w.cl.CommittedOffsets()[w.tp.topic][w.tp.partition]; ok && end.Offset <= o.Offset {
		return true
	}
	starts, err := kadm.NewClient(w.cl).ListStartOffsets(ctx, w.tp.topic)
	if err != nil {
		return false
	}
	start, ok := starts.Lookup(w.tp.topic, w.tp.partition)
	return ok && start.Err == nil && end.Offset <= start.Offset // an empty partition
}

// processWithRetry retries a failed batch with backoff until it succeeds,
// the partition is revoked, or the shutdown deadline passes.
func (w *worker) processWithRetry(recs []*kgo.Record) (ok bool) {
	backoff := w.c.opts.RetryBackoff
	stalled, failing := false, false
	defer func() {
		if stalled {
			w.c.stalled.Add(-1)
		}
		if failing {
			w.c.failures.done(ok)
		}
	}()
	for attempt := 1; ; attempt++ {
		err := w.c.process(w.c.workCtx, recs)
		if err == nil {
			return true
		}
		if w.c.workCtx.Err() != nil {
			return false
		}
		w.c.m.BatchRetries.Inc()
		if !stalled && attempt >= 3 {
			stalled = true
			w.c.stalled.Add(1)
		}
		if !failing {
			failing = true
			w.c.failures.failing(err)
		} else {
			w.c.failures.retry(err)
		}
		w.c.log.Debug("batch failed, retrying", zap.String("topic", w.tp.topic), zap.Int32("partition", w.tp.partition),
			zap.Int64("first_offset", recs[0].Offset), zap.Int("attempt", attempt), zap.Duration("backoff", backoff), zap.Error(err))
		select {
		case <-time.After(backoff):
		case <-w.quit:
			return false
		case <-w.c.workCtx.Done():
			return false
		}
		backoff = min(2*backoff, w.c.opts.MaxRetryBackoff)
	}
}
