package pipeline

import (
	"container/heap"
	"context"
	"math"
	"strconv"
	"time"

	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors"
	"go.uber.org/zap"
)

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
	if err := p.storeWatermark(ctx, tp); err != nil {
		return Result{}, err
	}
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
		b := &batch{nowMs: now.UnixMilli(), owners: owners{all: p.partitionOwner(tp)}}
		if b.users, _, err = p.load(ctx, ids, b.owners, nil); err != nil {
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

// dueQueries asks, for every clock with a watermark, for the users whose
// stored timers fall due before the clock's end; takeDue reads the
// answers. Process sends them with its load, drain alone (dueTimers).
func (p *Pipeline) dueQueries(clocks map[topicPartition]*clock) ([]*clock, []state.DueQuery) {
	var cs []*clock
	var qs []state.DueQuery
	for _, c := range clocks {
		if c.end == noWatermark {
			continue
		}
		cs = append(cs, c)
		qs = append(qs, state.DueQuery{Index: c.index, UpTo: c.end, Limit: p.o.DuePage})
	}
	return cs, qs
}

// takeDue gives each clock its due timers and returns their users. A
// clock whose page came back full has truncated set and its end lowered to
// the last deadline read.
func (p *Pipeline) takeDue(cs []*clock, due [][]state.DueTimer) []string {
	var ids []string
	for i, c := range cs {
		if len(due[i]) == p.o.DuePage {
			c.truncated, c.end = true, due[i][len(due[i])-1].Due
		}
		for _, d := range due[i] {
			ids = append(ids, d.User)
			c.due = append(c.due, dueTimer{due: d.Due, user: d.User})
		}
	}
	return ids
}

// dueTimers reads the clocks' due timers (dueQueries) in a round trip of
// their own and returns their users.
func (p *Pipeline) dueTimers(ctx context.Context, clocks map[topicPartition]*clock) ([]string, error) {
	cs, qs := p.dueQueries(clocks)
	if len(qs) == 0 {
		return nil, nil
	}
	start := time.Now()
	_, due, err := p.o.Store.LoadWithDue(ctx, nil, nil, qs)
	p.o.Metrics.RedisSeconds.WithLabelValues("timers").Observe(time.Since(start).Seconds())
	if err != nil {
		return nil, err
	}
	return p.takeDue(cs, due), nil
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
		u.sides[sideIndex(processors.Clicks)].dirty = true
		eff, err := p.fire(u, d.due)
		if err != nil {
			// The timer counts as fired: a processor that fails on it
			// would fail again on every retry.
			p.o.Logger.Error("processor failed on a timer", zap.String("topic", c.tp.topic), zap.Int32("partition", c.tp.partition), zap.Int64("due", d.due), zap.Error(err))
		}
		// The state holds only the pseudonym: timer alerts cannot carry
		// the original id.
		if err := p.emitInto(b, d.user, eff); err != nil {
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
	p.wms[tp] = wm
}

// Release stores a partition's watermark if it moved since last stored,
// and forgets it and the cached user state of its partition number when
// this instance no longer owns it; the next owner reads the stored ones.
func (p *Pipeline) Release(topic string, partition int32) {
	tp := topicPartition{topic, partition}
	if !p.wmStoreFailing.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), releaseTimeout)
		err := p.storeWatermark(ctx, tp)
		cancel()
		if err != nil {
			// Only behind: the next owner moves it on with the events
			// after.
			p.o.Logger.Warn("watermark not stored", zap.String("topic", topic), zap.Int32("partition", partition), zap.Error(err))
		}
	}
	if p.cache != nil {
		// Entries of either topic's partition of this number may hold
		// the other's documents as their own writer's (otherOwned).
		p.cache.drop(topicPartition{p.o.Topics.Clickstream, partition})
		p.cache.drop(topicPartition{p.o.Topics.Chat, partition})
	}
	p.wmMu.Lock()
	defer p.wmMu.Unlock()
	delete(p.wms, tp)
	delete(p.unstored, tp)
}

// releaseTimeout bounds Release's Redis write: a rebalance waits for it
// (and for no other partition's once one has failed: wmStoreFailing).
const releaseTimeout = 2 * time.Second
