package kafka

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
)

// A worker works one partition number: partition N of each input topic
// this instance owns. It merges their records by event time, as Kafka
// Streams merges the co-partitioned inputs of a task: the record with the
// earliest time goes next; when a topic has nothing buffered, the others
// go on only if it cannot have anything earlier (it delivered something as
// late, or it has nothing to read and AlignWait has passed); a topic with
// lag holds them back until it delivers, at most MaxAlignWait. So a
// backfill, a restart or a rebalance hands the pipeline the same order
// whatever the fetch timing, and each stream's processors read the other's
// state as of the event's time.
type worker struct {
	c     *Consumer
	cl    *kgo.Client
	sides []*side // in topic order (ConsumerOptions.Topics, then by name)
	inbox inbox
	// prev is the worker this one replaces: it starts with the records
	// prev received and did not make durable.
	prev *worker
	quit chan struct{}
	done chan struct{}
	// leftover: what this worker received and did not make durable, per
	// partition, in offset order; set when it stops.
	leftover map[topicPartition][]*kgo.Record
	// blockedSince is when the merge last stopped to wait for a topic.
	blockedSince time.Time
	// The stages of cx_consumer_wait_seconds, and the origin of side.taken.
	queuedWait, mergeWait prometheus.Observer
	epoch                 time.Time
}

// side is one partition of the worker's partition number.
type side struct {
	tp    topicPartition
	recs  []*kgo.Record // received, not yet handed to the pipeline
	times []int64
	// taken is when the worker took each of recs (ns since the worker's
	// epoch, a monotonic clock), for the merge stage of
	// cx_consumer_wait_seconds; 0 for records handed over by a previous
	// worker, which counted their wait there.
	taken []int64
	// next is the offset after the last record received (-1: none yet);
	// hwm the partition's end offset at that fetch.
	next, hwm int64
	// maxTime is the latest event time received; handed the latest handed
	// to the pipeline by this worker (countInversion).
	maxTime, handed int64
	// lastArrival is when a record last arrived (or the worker started).
	lastArrival time.Time
	// yielded: the partition had nothing to read for AlignWait (or lag
	// and nothing delivered for MaxAlignWait), so it holds nothing back
	// until it delivers again.
	yielded bool
	// Before the first record arrives, atEnd (asked of the broker at
	// askedAt) says whether there is anything to read.
	atEnd   bool
	askedAt time.Time
	// paused: fetching is paused while the buffer is full (the merge is
	// waiting for the other topic); franz-go drops what it had buffered
	// and fetches it again on resume.
	paused bool
}

// The buffer of one partition pauses its fetching at pauseAt records and
// resumes at resumeAt (multiples of MaxPollRecords): when one topic is
// denser in event time than the other, the merge takes it more slowly,
// and its records must not pile up while the other is waited for. Rare:
// the worker takes deliveries only when it needs them (wantsMore), so a
// buffer grows only while the other topic is awaited.
const pauseAt, resumeAt = 16, 2

type delivery struct {
	tp   topicPartition
	recs []*kgo.Record
	hwm  int64
	// polled is when the poll that fetched recs returned.
	polled time.Time
}

// inbox holds the poll loop's deliveries for a worker, up to a bound in
// records: a busy worker's inbox goes on taking the small deliveries of
// moderate load, so the poll loop, and with it every other partition's
// fetching, waits only for a worker with that many records waiting. Once
// closed (the worker stopped) it refuses more, and the poll loop gives
// them to the worker's successor: nothing received is dropped while its
// partition is still owned.
type inbox struct {
	mu      sync.Mutex
	items   [][]delivery
	records int // in items
	closed  bool
	wake    chan struct{} // something was put
	space   chan struct{} // something was taken
}

// put adds ds once fewer than maxRecords records wait.
func (b *inbox) put(ctx context.Context, ds []delivery, maxRecords int) bool {
	for {
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return false
		}
		if b.records < maxRecords {
			b.items = append(b.items, ds)
			for _, d := range ds {
				b.records += len(d.recs)
			}
			b.mu.Unlock()
			signal(b.wake)
			return true
		}
		b.mu.Unlock()
		select {
		case <-b.space:
		case <-ctx.Done():
			return false
		}
	}
}

func (b *inbox) take() [][]delivery {
	b.mu.Lock()
	items := b.items
	b.items, b.records = nil, 0
	b.mu.Unlock()
	if len(items) > 0 {
		signal(b.space)
	}
	return items
}

func (b *inbox) close() [][]delivery {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	items := b.items
	b.items, b.records = nil, 0
	signal(b.space) // a put waiting for room sees it closed
	return items
}

func (b *inbox) empty() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.items) == 0
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func newWorker(c *Consumer, cl *kgo.Client, tps []topicPartition, prev *worker) *worker {
	rank := func(topic string) int {
		if i := slices.Index(c.opts.Topics, topic); i >= 0 {
			return i
		}
		return len(c.opts.Topics)
	}
	slices.SortFunc(tps, func(a, b topicPartition) int {
		if ra, rb := rank(a.topic), rank(b.topic); ra != rb {
			return ra - rb
		}
		if a.topic < b.topic {
			return -1
		}
		return 1
	})
	w := &worker{c: c, cl: cl, prev: prev, quit: make(chan struct{}), done: make(chan struct{}),
		inbox:      inbox{wake: make(chan struct{}, 1), space: make(chan struct{}, 1)},
		queuedWait: c.m.ConsumerWait.WithLabelValues("queued"), mergeWait: c.m.ConsumerWait.WithLabelValues("merge")}
	now := time.Now()
	w.epoch = now.Add(-time.Nanosecond) // taken > 0 for every record this worker takes
	for _, tp := range tps {
		w.sides = append(w.sides, &side{tp: tp, next: -1, hwm: -1, lastArrival: now})
	}
	return w
}

func (w *worker) side(tp topicPartition) *side {
	for _, s := range w.sides {
		if s.tp == tp {
			return s
		}
	}
	return nil
}

// add buffers received records of one partition (offset order), fetched
// by the poll that returned at polled (zero: handed over by a previous
// worker, their wait unknown).
func (w *worker) add(tp topicPartition, recs []*kgo.Record, hwm int64, polled time.Time) {
	s := w.side(tp)
	if s == nil || len(recs) == 0 {
		return
	}
	now := time.Now()
	queued := now.Sub(polled).Seconds()
	taken := int64(now.Sub(w.epoch))
	if polled.IsZero() {
		taken = 0 // handed over: its wait was counted by the worker before
	}
	for _, r := range recs {
		if r.Offset < s.next {
			continue // handed over by the previous worker and fetched again
		}
		var at int64
		if w.c.opts.Time != nil {
			at = w.c.opts.Time(r)
		}
		s.recs = append(s.recs, r)
		s.times = append(s.times, at)
		s.taken = append(s.taken, taken)
		s.maxTime = max(s.maxTime, at)
		s.next = r.Offset + 1
		if !polled.IsZero() {
			w.queuedWait.Observe(queued)
		}
	}
	s.hwm = max(s.hwm, hwm)
	s.lastArrival = now
	s.yielded = false
	if !s.paused && len(s.recs) >= pauseAt*w.c.opts.MaxPollRecords && w.cl != nil {
		s.paused = true
		w.cl.PauseFetchPartitions(map[string][]int32{tp.topic: {tp.partition}})
	}
}

func (w *worker) resume(s *side) {
	if s.paused && w.cl != nil {
		s.paused = false
		w.cl.ResumeFetchPartitions(map[string][]int32{s.tp.topic: {s.tp.partition}})
	}
}

func (w *worker) run() {
	defer close(w.done)
	var handed map[topicPartition][]*kgo.Record
	if w.prev != nil {
		// Go on from where the previous worker was, with what it received
		// and did not make durable.
		<-w.prev.done
		handed = w.prev.leftover
		for _, s := range w.sides {
			if before := w.prev.side(s.tp); before != nil {
				s.hwm, s.atEnd, s.next, s.maxTime = before.hwm, before.atEnd, before.next, before.maxTime
				if recs := handed[s.tp]; len(recs) > 0 {
					s.next = recs[0].Offset
				}
			}
		}
		w.prev = nil
	}
	select {
	case <-w.c.started:
	case <-w.quit:
		for _, s := range w.sides {
			s.recs = handed[s.tp] // passed on untouched
		}
		w.stop(nil)
		return
	}
	for _, s := range w.sides {
		w.add(s.tp, handed[s.tp], -1, time.Time{})
	}
	var inflight []*kgo.Record
	defer func() { w.stop(inflight) }()
	tick := time.NewTicker(w.c.opts.TimerInterval)
	defer tick.Stop()
	var recheck *time.Timer
	defer func() {
		if recheck != nil {
			recheck.Stop()
		}
	}()
	for {
		// Quit wins over what is buffered: it was not committed, so the
		// next owner reads it again (or the successor takes it over).
		select {
		case <-w.quit:
			return
		default:
		}
		if w.wantsMore() {
			for _, ds := range w.inbox.take() {
				for _, d := range ds {
					w.add(d.tp, d.recs, d.hwm, d.polled)
				}
			}
		}
		batch, wait := w.merge(time.Now())
		if len(batch) > 0 {
			inflight = batch
			if !w.processWithRetry(batch) {
				return
			}
			inflight = nil
			w.durable(batch)
			select {
			case now := <-tick.C:
				w.fireTimers(now)
			default:
			}
			continue
		}
		var recheckC <-chan time.Time
		if wait > 0 {
			if recheck == nil {
				recheck = time.NewTimer(wait)
			} else {
				recheck.Reset(wait)
			}
			recheckC = recheck.C
		}
		select {
		case <-w.quit:
			return
		case <-w.inbox.wake:
		case <-recheckC:
		case now := <-tick.C:
			w.fireTimers(now)
		}
	}
}

// wantsMore reports whether the worker should take what the poll loop
// delivered: when a topic's buffer is empty (the merge may need its next
// record) or there is less than a batch in hand. Otherwise deliveries wait
// in the inbox, and the poll loop, and with it fetching, waits for room:
// the same back-pressure as one bounded queue per partition.
func (w *worker) wantsMore() bool {
	total := 0
	for _, s := range w.sides {
		if len(s.recs) == 0 {
			return true
		}
		total += len(s.recs)
	}
	return total < w.c.opts.MaxPollRecords
}

// merge takes up to MaxPollRecords records in event-time order. When a
// topic must be waited for, it returns what it has and, with nothing, how
// long to wait before asking again.
func (w *worker) merge(now time.Time) (batch []*kgo.Record, wait time.Duration) {
	for len(batch) < w.c.opts.MaxPollRecords {
		var next *side
		for _, s := range w.sides {
			if len(s.recs) > 0 && (next == nil || s.times[0] < next.times[0]) {
				next = s
			}
		}
		if next == nil {
			w.blockedSince = time.Time{}
			return batch, 0
		}
		at := next.times[0]
		before := true // s ranks before next (w.sides is in topic order)
		for _, s := range w.sides {
			if s == next {
				before = false
				continue
			}
			if len(s.recs) > 0 {
				continue
			}
			if d, hold := w.holds(s, at, before, now); hold {
				return batch, d
			}
		}
		w.blockedSince = time.Time{}
		w.countInversion(next, at)
		if taken := next.taken[0]; taken > 0 {
			w.mergeWait.Observe(time.Duration(int64(now.Sub(w.epoch)) - taken).Seconds())
		}
		batch = append(batch, next.recs[0])
		next.recs, next.times, next.taken = next.recs[1:], next.times[1:], next.taken[1:]
		if next.paused && len(next.recs) <= resumeAt*w.c.opts.MaxPollRecords {
			w.resume(next)
		}
	}
	return batch, 0
}

// countInversion counts next's record at event time at when a record of
// another topic that goes after it (a later time, or the same time and a
// topic later in the order) was handed over already. A record without a
// time (at 0: one that will not decode, bound for the dead-letter topic)
// has no place in the order and counts nothing.
func (w *worker) countInversion(next *side, at int64) {
	if at <= 0 {
		return
	}
	after := false // s's topic comes after next's in the order of equal times
	for _, s := range w.sides {
		if s == next {
			after = true
			continue
		}
		if s.handed > at || (after && s.handed == at) {
			w.c.m.MergeInversions.Inc()
			break
		}
	}
	next.handed = max(next.handed, at)
}

// holds reports whether side s, with nothing buffered, holds back a record
// of another topic at event time at, and if so how long to wait. before:
// s's topic comes first in the order of equal times.
func (w *worker) holds(s *side, at int64, before bool, now time.Time) (time.Duration, bool) {
	if s.yielded || (s.next >= 0 && (s.maxTime > at || (!before && s.maxTime == at))) {
		// Yielded, or it delivered a record as late (later, if its
		// records of equal time go first): in its own order nothing
		// that goes earlier is still to come.
		return 0, false
	}
	if w.blockedSince.IsZero() {
		w.blockedSince = now
	}
	waited := now.Sub(w.blockedSince)
	if w.caughtUp(s, now) {
		if waited >= w.c.opts.AlignWait {
			s.yielded = true
			return 0, false
		}
		return w.c.opts.AlignWait - waited, true
	}
	if waited >= w.c.opts.MaxAlignWait {
		s.yielded = true
		w.c.m.AlignmentForced.Inc()
		w.c.log.Warn("a partition with lag delivered nothing; the other input topic goes on without it", zap.String("topic", s.tp.topic),
			zap.Int32("partition", s.tp.partition), zap.Duration("waited", waited))
		return 0, false
	}
	return min(w.c.opts.MaxAlignWait-waited, time.Second), true
}

// caughtUp reports whether the partition has nothing to read: its end
// offset at the last fetch is where it was read to, or, before any record
// arrived, the broker says so (asked at most once a second).
func (w *worker) caughtUp(s *side, now time.Time) bool {
	if s.next >= 0 {
		return s.hwm >= 0 && atEnd(s.hwm-s.next, now.Sub(s.lastArrival))
	}
	if !s.atEnd && now.Sub(s.askedAt) >= time.Second {
		s.askedAt = now
		if gap, ok := w.leftToRead(s.tp); ok {
			s.atEnd = atEnd(gap, now.Sub(s.lastArrival))
		}
	}
	return s.atEnd
}

// markerSlack: offsets a partition's end may stay ahead of its last
// record for good. A transactional producer's commit marker takes an
// offset but is never delivered, so a partition written in transactions
// never reaches its end offset; a gap this small with nothing delivered
// for a second is read as the end.
const markerSlack = 2

func atEnd(gap int64, quiet time.Duration) bool {
	return gap <= 0 || (gap <= markerSlack && quiet >= time.Second)
}

// durable marks a processed batch's offsets for commit and updates the
// lag metrics.
func (w *worker) durable(batch []*kgo.Record) {
	for _, s := range w.sides {
		var last *kgo.Record
		for i := len(batch) - 1; i >= 0; i-- {
			if r := batch[i]; r.Topic == s.tp.topic && r.Partition == s.tp.partition {
				last = r
				break
			}
		}
		if last == nil {
			continue
		}
		// Durable: the offset may now be committed (in the background,
		// every CommitInterval).
		w.cl.MarkCommitRecords(last)
		part := strconv.Itoa(int(s.tp.partition))
		w.c.m.LagRecords.WithLabelValues(s.tp.topic, part).Set(float64(max(0, s.hwm-last.Offset-1)))
		w.c.m.LagSeconds.WithLabelValues(s.tp.topic, part).Set(time.Since(last.Timestamp).Seconds())
	}
}

// fireTimers calls the timer function for each partition. The partition
// number is idle (idleFor > 0) only when every topic's partition has no
// lag and nothing buffered: an idle clickstream must not move its
// watermark by the wall clock while chats of that time are still to read.
func (w *worker) fireTimers(now time.Time) {
	if w.c.timers == nil {
		return
	}
	idle := w.inbox.empty()
	var last time.Time
	for _, s := range w.sides {
		idle = idle && len(s.recs) == 0 && w.caughtUp(s, now)
		if s.lastArrival.After(last) {
			last = s.lastArrival
		}
	}
	var idleFor time.Duration
	if idle {
		idleFor = now.Sub(last)
	}
	for _, s := range w.sides {
		if err := w.c.timers(w.c.workCtx, s.tp.topic, s.tp.partition, now, idleFor); err != nil && w.c.workCtx.Err() == nil {
			// The next tick tries again; the timers stay in Redis.
			w.c.log.Warn("timers failed", zap.String("topic", s.tp.topic), zap.Int32("partition", s.tp.partition), zap.Error(err))
		}
	}
}

// stop records what the worker received and did not make durable, for a
// successor, and clears its partitions' lag series (a successor sets them
// again).
func (w *worker) stop(inflight []*kgo.Record) {
	w.leftover = map[topicPartition][]*kgo.Record{}
	for _, r := range inflight {
		tp := topicPartition{r.Topic, r.Partition}
		w.leftover[tp] = append(w.leftover[tp], r)
	}
	for _, s := range w.sides {
		w.leftover[s.tp] = append(w.leftover[s.tp], s.recs...)
	}
	for _, ds := range w.inbox.close() {
		for _, d := range ds {
			w.leftover[d.tp] = append(w.leftover[d.tp], d.recs...)
		}
	}
	for _, s := range w.sides {
		// A partition left paused would stay paused if assigned again;
		// a successor pauses it again if its buffer is full.
		w.resume(s)
		part := strconv.Itoa(int(s.tp.partition))
		w.c.m.LagRecords.DeleteLabelValues(s.tp.topic, part)
		w.c.m.LagSeconds.DeleteLabelValues(s.tp.topic, part)
		w.c.m.TimersPending.DeleteLabelValues(s.tp.topic, part)
	}
}

// leftToRead returns how many offsets lie between where the group's
// committed offset (or the start) leaves the partition and its end.
func (w *worker) leftToRead(tp topicPartition) (int64, bool) {
	ctx, cancel := context.WithTimeout(w.c.workCtx, 2*time.Second)
	defer cancel()
	adm := kadm.NewClient(w.cl)
	end, ok := offsetOf(tp)(adm.ListEndOffsets(ctx, tp.topic))
	if !ok {
		return 0, false
	}
	if o, ok := w.cl.CommittedOffsets()[tp.topic][tp.partition]; ok {
		return end - o.Offset, true
	}
	start, ok := offsetOf(tp)(adm.ListStartOffsets(ctx, tp.topic))
	return end - start, ok
}

// offsetOf reads partition tp's offset from a ListStartOffsets or
// ListEndOffsets answer.
func offsetOf(tp topicPartition) func(kadm.ListedOffsets, error) (int64, bool) {
	return func(listed kadm.ListedOffsets, err error) (int64, bool) {
		if err != nil {
			return 0, false
		}
		o, ok := listed.Lookup(tp.topic, tp.partition)
		return o.Offset, ok && o.Err == nil
	}
}
