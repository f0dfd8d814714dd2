// Package kafka is cxstream's Kafka I/O: a group consumer that runs one
// worker per assigned partition number, reading that partition of both
// input topics merged in event-time order, and commits only what the
// pipeline made durable; and the publisher that produces alerts and dead
// letters. The client options come from the runner (runner.KafkaOpts).
package kafka

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

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

// BatchFunc makes one batch durable; the consumer commits the batch's
// offsets only after it returns nil, and retries it otherwise. A batch
// holds the records of one partition number of the input topics, each
// topic's in offset order, merged by event time.
type BatchFunc func(ctx context.Context, recs []*kgo.Record) error

// TimeFunc returns a record's event time (ms) for the merge; a record
// without a readable time may return 0 (it goes first).
type TimeFunc func(*kgo.Record) int64

// ConsumerOptions configure a Consumer.
type ConsumerOptions struct {
	// MaxPollRecords bounds a poll, and with it a batch (default 2000).
	MaxPollRecords int
	// QueuedBatches: a partition worker may have this many times
	// MaxPollRecords records waiting before the poll loop waits for it:
	// the bound on memory when processing falls behind (default 2).
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
	// Topics are the input topics, whose partitions of the same number
	// (a user's clicks and chats) are assigned together and worked by one
	// worker, which hands the pipeline their records merged in event-time
	// order (Time): what one stream's processors read of the other's state
	// is then as of the event's time, not of how far each topic happens to
	// have been read. Equal times go in this list's order.
	Topics []string
	// Time reads a record's event time for the merge (nil: all records
	// are equal, and go in topic order).
	Time TimeFunc
	// AlignWait: how long a topic that has nothing to read may hold back
	// the other topic's records later than the last it delivered (default
	// 0: not at all, like Kafka Streams' max.task.idle.ms 0). A topic with
	// lag always holds them back, up to MaxAlignWait.
	AlignWait time.Duration
	// MaxAlignWait bounds waiting for a topic that has lag but delivers
	// nothing (default 30s); past it the others go on, and
	// cx_stream_alignment_forced_total counts it.
	MaxAlignWait time.Duration
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
	if o.AlignWait < 0 {
		o.AlignWait = 0
	}
	if o.MaxAlignWait <= 0 {
		o.MaxAlignWait = 30 * time.Second
	}
}

type topicPartition struct {
	topic     string
	partition int32
}

// Consumer consumes a group's partitions with one goroutine per assigned
// partition number, started on assign and stopped and awaited on revoke.
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

	mu sync.Mutex
	// owned are the partitions assigned to this instance; workers work
	// them by partition number.
	owned    map[topicPartition]bool
	workers  map[int32]*worker
	cl       *kgo.Client // the group client, once it was assigned partitions
	stalled  atomic.Int32
	joined   atomic.Bool
	failures failureLog
}

// NewConsumer returns a consumer. Its client must be built with the
// options from GroupOpts(c).
func NewConsumer(process BatchFunc, opts ConsumerOptions, log *zap.Logger, m *metrics.Metrics) *Consumer {
	opts.defaults()
	workCtx, cancel := context.WithCancel(context.Background())
	return &Consumer{process: process, opts: opts, log: log, m: m, workCtx: workCtx, cancelWork: cancel, owned: map[topicPartition]bool{}, workers: map[int32]*worker{}, started: make(chan struct{}),
		failures: failureLog{log: log, every: 30 * time.Second}}
}

// SetBatchFunc sets the function that processes batches; call it before
// Run.
func (c *Consumer) SetBatchFunc(f BatchFunc) { c.process = f }

// SetTimerFunc sets the function that fires due timers; call it before Run.
func (c *Consumer) SetTimerFunc(f TimerFunc) { c.timers = f }

// SetTimeFunc sets the function that reads records' event time for the
// merge of the input topics; call it before Run.
func (c *Consumer) SetTimeFunc(f TimeFunc) { c.opts.Time = f }

// SetReleaseFunc sets the function told of partitions this instance no
// longer works; call it before Run.
func (c *Consumer) SetReleaseFunc(f ReleaseFunc) { c.release = f }

// GroupOpts are the client options the consumer needs: committing only
// marked (durable) offsets, the assign/revoke/lost callbacks, and, with
// more than one topic, an assignment that gives partition N of every
// topic to the same member.
func (c *Consumer) GroupOpts() []kgo.Opt {
	// The range balancer assigns equal ranges of every topic's partitions
	// to the members in the same order: co-partitioned, as Kafka Streams
	// needs for joins. Cooperative-sticky is kept as a second choice so a
	// rolling upgrade from a version that only spoke it keeps working
	// (with workers that have one topic each) until every member speaks
	// range; the group then moves to it by itself.
	balancers := []kgo.GroupBalancer{kgo.CooperativeStickyBalancer()}
	if len(c.opts.Topics) > 1 {
		balancers = []kgo.GroupBalancer{kgo.RangeBalancer(), kgo.CooperativeStickyBalancer()}
	}
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
		kgo.Balancers(balancers...),
		// A partition resumed after a pause is fetched only when the
		// fetch in flight returns: bound that wait as the Java consumer
		// does (franz-go's default is 5 s).
		kgo.FetchMaxWait(500 * time.Millisecond),
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
		// A worker gets the records of all its topics from one poll at
		// once, so it never merges one topic's fresh records against the
		// other's stale end offset.
		byPartition := map[int32][]delivery{}
		polled := time.Now()
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if len(p.Records) > 0 {
				byPartition[p.Partition] = append(byPartition[p.Partition], delivery{tp: topicPartition{p.Topic, p.Partition}, recs: p.Records, hwm: p.HighWatermark, polled: polled})
			}
		})
		for part, ds := range byPartition {
			c.deliver(ctx, part, ds)
		}
	}
	c.shutdown(cl)
	return nil
}

func (c *Consumer) shutdown(cl *kgo.Client) {
	timer := time.AfterFunc(c.opts.ShutdownTimeout, c.cancelWork)
	defer timer.Stop()
	c.mu.Lock()
	all := make(map[string][]int32)
	for tp := range c.owned {
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

// deliver hands a poll's records of one partition number to its worker,
// keeping only partitions still owned (one revoked since the fetch is read
// again by its next owner). A worker being replaced refuses them, and
// they go to its successor.
func (c *Consumer) deliver(ctx context.Context, part int32, ds []delivery) {
	for {
		c.mu.Lock()
		w := c.workers[part]
		kept := ds[:0]
		for _, d := range ds {
			if c.owned[d.tp] {
				kept = append(kept, d)
			}
		}
		ds = kept
		c.mu.Unlock()
		if w == nil || len(ds) == 0 {
			return
		}
		if w.inbox.put(ctx, ds, c.opts.QueuedBatches*c.opts.MaxPollRecords) || ctx.Err() != nil {
			return
		}
	}
}

func (c *Consumer) assigned(_ context.Context, cl *kgo.Client, assigned map[string][]int32) {
	c.joined.Store(true)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cl = cl
	changed := map[int32]bool{}
	for topic, parts := range assigned {
		for _, p := range parts {
			tp := topicPartition{topic, p}
			if !c.owned[tp] {
				c.owned[tp] = true
				changed[p] = true
			}
		}
	}
	for p := range changed {
		c.startWorker(cl, p)
	}
	c.m.Partitions.Set(float64(len(c.owned)))
	c.log.Info("partitions assigned", zap.Any("partitions", assigned))
}

// startWorker starts the worker of partition number p for the partitions
// of that number now owned, replacing (and handing over the unprocessed
// records of) the one working it so far; c.mu is held.
func (c *Consumer) startWorker(cl *kgo.Client, p int32) *worker {
	prev := c.workers[p]
	var tps []topicPartition
	for tp := range c.owned {
		if tp.partition == p {
			tps = append(tps, tp)
		}
	}
	if cl == nil {
		cl = c.cl
	}
	if len(tps) == 0 {
		delete(c.workers, p)
	} else {
		w := newWorker(c, cl, tps, prev)
		c.workers[p] = w
		go w.run()
	}
	if prev != nil {
		close(prev.quit)
	}
	return prev
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

// stopWorkers gives up the given partitions: their workers stop (each
// finishes, or abandons at the shutdown deadline, its batch in hand) and
// are awaited; a worker keeping other partitions of its number is
// replaced by one that goes on with them and their unprocessed records.
func (c *Consumer) stopWorkers(parts map[string][]int32) {
	var stopping []*worker
	c.mu.Lock()
	changed := map[int32]bool{}
	for topic, ps := range parts {
		for _, p := range ps {
			tp := topicPartition{topic, p}
			if c.owned[tp] {
				delete(c.owned, tp)
				changed[p] = true
			}
		}
	}
	for p := range changed {
		if prev := c.startWorker(nil, p); prev != nil {
			stopping = append(stopping, prev)
		}
	}
	c.m.Partitions.Set(float64(len(c.owned)))
	c.mu.Unlock()
	for _, w := range stopping {
		<-w.done
	}
	if c.release != nil {
		for topic, ps := range parts {
			for _, p := range ps {
				c.release(topic, p)
			}
		}
	}
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
		w.c.log.Debug("batch failed, retrying", zap.String("topic", recs[0].Topic), zap.Int32("partition", recs[0].Partition),
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
