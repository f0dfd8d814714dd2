package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
)

// on returns the next record of topic's partition.
func (f *fixture) on(topic string, partition int32, value string) *kgo.Record {
	key := fmt.Sprintf("%s/%d", topic, partition)
	off := f.off[key]
	f.off[key]++
	return &kgo.Record{Topic: topic, Partition: partition, Offset: off, Value: []byte(value)}
}

func (f *fixture) clickOn(partition int32, id, user string) *kgo.Record {
	return f.on(clicks, partition, fmt.Sprintf(`{"event_id":%q,"user_id":%q,"type":"page_view","event_time":%d}`, id, user, f.now.UnixMilli()))
}

func (f *fixture) chatOn(partition int32, id, user string) *kgo.Record {
	return f.on(chats, partition, fmt.Sprintf(`{"event_id":%q,"conversation_id":"c1","user_id":%q,"sender":"customer","text":"hello","event_time":%d}`, id, user, f.now.UnixMilli()))
}

func withCache(o *pipeline.Options) { o.CacheBytes = 1 << 20 }

// The batches of several partitions made as one cost the Redis round
// trips of one batch, give each user the state its own batch would have,
// and leave each user's documents in the state cache of its own
// partition, as its own batch would have: the next batch of that
// partition finds them there. A user whose records come from the parts of
// two partitions (the topics partitioned differently) is read and written
// around the cache, and no stale entry of it is left.
func TestBatchesOfSeveralPartitionsAreMadeAsOne(t *testing.T) {
	f := newFixtureWith(t, 0, withCache)
	ctx := context.Background()
	// Each partition's first batch on its own (a user enters the cache
	// from its second load on; each partition's watermark is read once).
	for _, b := range [][]*kgo.Record{{f.clickOn(0, "e0", "u1")}, {f.clickOn(1, "e1", "u2")}, {f.chatOn(2, "m0", "u3")}} {
		_, err := f.p.Process(ctx, b)
		testenv.Must(t, err, "first batch")
	}
	rt := &roundTrips{}
	f.rdb.AddHook(rt)
	parts := [][]*kgo.Record{
		{f.clickOn(0, "e2", "u1"), f.chatOn(0, "m1", "u1")},
		{f.clickOn(1, "e3", "u2")},
		{f.chatOn(2, "m2", "u3")},
	}
	_, err := f.p.ProcessParts(ctx, parts)
	testenv.Must(t, err, "parts")
	if rt.n != 2 {
		t.Errorf("three parts made in %d Redis round trips, want 2 (one load, one write)", rt.n)
	}
	for user, want := range map[string][2]int{"u1": {2, 1}, "u2": {2, 0}, "u3": {0, 2}} {
		n, err := f.echoed(user)
		testenv.Must(t, err, "read chats")
		if got := [2]int{f.counted(t, user).Events, n}; got != want {
			t.Errorf("%s: clicks and chats in the state %v, want %v", user, got, want)
		}
	}

	// Each partition's next batch of its own finds its users cached.
	hits := testutil.ToFloat64(f.m.StateCacheHits)
	_, err = f.p.Process(ctx, []*kgo.Record{f.clickOn(1, "e4", "u2")})
	testenv.Must(t, err, "partition 1 alone")
	_, err = f.p.Process(ctx, []*kgo.Record{f.clickOn(0, "e5", "u1")})
	testenv.Must(t, err, "partition 0 alone")
	if got := testutil.ToFloat64(f.m.StateCacheHits) - hits; got != 2 {
		t.Errorf("%v cache hits for the users of the parts, want 2", got)
	}

	// u4 clicks on partition 0 and chats on partition 1.
	_, err = f.p.Process(ctx, []*kgo.Record{f.clickOn(0, "e6", "u4")})
	testenv.Must(t, err, "u4 alone")
	_, err = f.p.Process(ctx, []*kgo.Record{f.clickOn(0, "e7", "u4")}) // cached from its second load
	testenv.Must(t, err, "u4 again")
	_, err = f.p.ProcessParts(ctx, [][]*kgo.Record{{f.clickOn(0, "e8", "u4")}, {f.chatOn(1, "m3", "u4")}})
	testenv.Must(t, err, "u4 in two parts")
	_, err = f.p.Process(ctx, []*kgo.Record{f.clickOn(0, "e9", "u4")})
	testenv.Must(t, err, "u4 after")
	if got := testutil.ToFloat64(f.m.StateConflicts); got != 0 {
		t.Errorf("%v state conflicts: a stale cached document was used", got)
	}
	n, err := f.echoed("u4")
	testenv.Must(t, err, "read chats")
	if got := [2]int{f.counted(t, "u4").Events, n}; got != [2]int{4, 1} {
		t.Errorf("u4: clicks and chats in the state %v, want [4 1]", got)
	}

	// u5 clicks on partition 0 (cached there, a timer a minute later) and
	// chats on partition 1. In a batch of parts, u5's chat is in
	// partition 1's part while partition 0's part moves its clock past
	// u5's timer: the timer writes u5's click document, which partition
	// 1's owner does not own, so no cache may keep the one before.
	click := func(id, user string, at time.Time) *kgo.Record {
		return f.on(clicks, 0, fmt.Sprintf(`{"event_id":%q,"user_id":%q,"type":"page_view","event_time":%d}`, id, user, at.UnixMilli()))
	}
	for _, id := range []string{"e10", "e11"} {
		_, err = f.p.Process(ctx, []*kgo.Record{click(id, "u5", f.now)})
		testenv.Must(t, err, "u5 alone")
	}
	later := f.now.Add(90 * time.Second)
	chat := f.on(chats, 1, fmt.Sprintf(`{"event_id":"m4","conversation_id":"c1","user_id":"u5","sender":"customer","text":"hello","event_time":%d}`, later.UnixMilli()))
	_, err = f.p.ProcessParts(ctx, [][]*kgo.Record{{click("e12", "u6", later)}, {chat}})
	testenv.Must(t, err, "u5's timer fired in partition 1's part")
	if got := f.counted(t, "u5").Fired; got != f.now.Add(time.Minute).UnixMilli() {
		t.Fatalf("u5's timer did not fire in the batch of parts: fired %d", got)
	}
	_, err = f.p.Process(ctx, []*kgo.Record{click("e13", "u5", later)})
	testenv.Must(t, err, "u5 on partition 0 after")
	if got := testutil.ToFloat64(f.m.StateConflicts); got != 0 {
		t.Errorf("%v state conflicts: a stale cached click document of u5 was used", got)
	}
	if st := f.counted(t, "u5"); st.Events != 3 || st.Fired != f.now.Add(time.Minute).UnixMilli() {
		t.Errorf("u5's click state %+v, want 3 clicks and the timer fired", st)
	}
}

// Workers that hand the combiner small batches at the same moment share
// one batch; when all fail, none is durable and each gets the error; when
// one part cannot be made, the others still are; a big batch is made on
// its own, without waiting for others.
func TestTheCombinerMakesConcurrentSmallBatchesAsOne(t *testing.T) {
	f := newFixtureWith(t, 0, withCache)
	ctx := context.Background()
	c := pipeline.NewCombiner(f.p, 3)
	gathered := 0
	pipeline.SetGather(c, func(waiting func() int) {
		gathered++
		testenv.Eventually(t, 5*time.Second, "three batches waiting", func() bool { return waiting() == 3 })
	})
	run := func(batches [][]*kgo.Record) []error {
		errs := make([]error, len(batches))
		var wg sync.WaitGroup
		for i, b := range batches {
			wg.Go(func() { errs[i] = c.Process(ctx, b) })
		}
		wg.Wait()
		return errs
	}
	batches := func(n int) [][]*kgo.Record {
		return [][]*kgo.Record{
			{f.clickOn(0, fmt.Sprint("a", n), "u1")},
			{f.clickOn(1, fmt.Sprint("b", n), "u2"), f.chatOn(1, fmt.Sprint("c", n), "u2")},
			{f.chatOn(2, fmt.Sprint("d", n), "u3")},
		}
	}
	before := batchCount(t, f)
	testenv.Must(t, errors.Join(run(batches(1))...), "three workers")
	if got := batchCount(t, f) - before; got != 1 || gathered != 1 {
		t.Errorf("three workers' batches made as %d batches (%d gathered), want 1", got, gathered)
	}

	// Kafka down: the batch of all three fails, and so do, made again on
	// their own, the two whose parts have records to publish; the third
	// (a chat, nothing to publish) is made.
	f.pub.fail = errors.New("broker unavailable")
	errs := run(batches(2))
	if !errors.Is(errs[0], f.pub.fail) || !errors.Is(errs[1], f.pub.fail) || errs[2] != nil {
		t.Errorf("with Kafka down: %v, want the publish error for the first two workers and none for the third", errs)
	}
	for user, want := range map[string]int{"u1": 1, "u2": 1} {
		if got := f.counted(t, user).Events; got != want {
			t.Errorf("%s has %d clicks in the state after a failed batch, want %d", user, got, want)
		}
	}
	f.pub.fail = nil

	// A document that cannot be read fails its part alone: the others are
	// made on their own after the batch of all three failed.
	testenv.Must(t, f.rdb.HSet(ctx, f.store.Key("u3", state.Chat), "v", 1, "s", "\x7fnot a document").Err(), "corrupt u3's chats")
	errs = run(batches(3))
	if errs[0] != nil || errs[1] != nil || errs[2] == nil {
		t.Fatalf("with u3's document unreadable: %v, want only the third worker's batch to fail", errs)
	}
	for user, want := range map[string]int{"u1": 2, "u2": 2} {
		if got := f.counted(t, user).Events; got != want {
			t.Errorf("%s has %d clicks in the state, want %d", user, got, want)
		}
	}

	gathered, before = 0, batchCount(t, f)
	testenv.Must(t, c.Process(ctx, []*kgo.Record{f.clickOn(0, "big1", "u1"), f.clickOn(0, "big2", "u1"), f.clickOn(0, "big3", "u1")}), "big batch")
	if got := batchCount(t, f) - before; got != 1 || gathered != 0 {
		t.Errorf("a batch of the combining size made as %d batches after %d gatherings, want 1 and none", got, gathered)
	}
	if got := f.counted(t, "u1").Events; got != 5 {
		t.Errorf("u1 has %d clicks, want 5", got)
	}
}

// batchCount is how many batches the pipeline made (cx_batch_seconds).
func batchCount(t *testing.T, f *fixture) uint64 {
	t.Helper()
	mfs, err := f.m.Registry.Gather()
	testenv.Must(t, err, "gather metrics")
	for _, mf := range mfs {
		if mf.GetName() == "cx_batch_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no cx_batch_seconds")
	return 0
}
