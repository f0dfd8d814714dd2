package runner

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/kafka"
	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

// instance is one pipeline with the state cache on (the default size),
// as one cxstream process would run it, driven batch by batch.
type instance struct {
	*pipeline.Pipeline
	m *metrics.Metrics
}

func newInstance(t testing.TB, e env, rdb redis.UniversalClient, prefix string, cacheBytes ...int64) instance {
	t.Helper()
	return newInstanceOn(t, e, state.New(rdb, state.Options{Prefix: prefix}), prefix, cacheBytes...)
}

// newInstanceOn is newInstance on a store of the caller's (a TTL, a clock).
func newInstanceOn(t testing.TB, e env, store *state.Store, prefix string, cacheBytes ...int64) instance {
	t.Helper()
	cfg := e.config(prefix, prefix)
	if len(cacheBytes) > 0 {
		cfg.Processing.StateCacheBytes = cacheBytes[0]
	}
	procs, err := Processors(cfg, sharedScorer(t))
	testenv.Must(t, err, "processors")
	validator, err := schemas.NewValidator(cfg.Processing.MaxMessageBytes)
	testenv.Must(t, err, "validator")
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.kafka.Brokers...))
	testenv.Must(t, err, "kafka client")
	t.Cleanup(cl.Close)
	m := metrics.New()
	p, err := pipeline.New(pipeline.Options{Topics: cfg.Topics, Validator: validator, Processors: procs,
		Store: store, Publisher: kafka.NewPublisher(cl), Metrics: m,
		AllowedLateness: cfg.Processing.AllowedLateness, CacheBytes: cfg.Processing.StateCacheBytes})
	testenv.Must(t, err, "pipeline")
	return instance{Pipeline: p, m: m}
}

// clicksAt are n product views of user on clickstream partition 0 at
// offsets from, from+1, ...
func clicksAt(user string, from, n int) []*kgo.Record {
	at := time.Now().Add(-time.Hour).UnixMilli()
	var out []*kgo.Record
	for i := from; i < from+n; i++ {
		r := click(user, user+"-"+string(rune('a'+i)), schemas.ClickProductView, at+int64(i)*1000, 0)
		r.Partition, r.Offset = 0, int64(i)
		out = append(out, r)
	}
	return out
}

// storedClicks is the fence and the event count of the user's stored
// click document.
func storedClicks(t *testing.T, store *state.Store, user string) (fence int64, events int, version int64) {
	t.Helper()
	docs, err := store.Load(context.Background(), []string{user})
	testenv.Must(t, err, "load")
	d, err := pipeline.DecodeClick(docs[user].Click.Data)
	testenv.Must(t, err, "decode")
	for _, n := range d.Churn.Days {
		events += n
	}
	return d.Fence["cx.clickstream.v1/0"], events, docs[user].Click.Version
}

// A zombie (an instance that lost its partition without hearing of it)
// holds a stale cached copy of a user's state; its write must lose to the
// new owner's, and its retry must read Redis and count nothing twice.
func TestZombieWithStaleCacheCannotOverwriteNewerState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	zombie := newInstance(t, e, e.redis.Client, "zombie")
	owner := newInstance(t, e, e.redis.Client, "zombie")
	store := state.New(e.redis.Client, state.Options{Prefix: "zombie"})
	recs := clicksAt("z", 0, 5)

	// Two batches: a user is cached from their second load on.
	_, err := zombie.Process(ctx, recs[:1])
	testenv.Must(t, err, "zombie's first batch")
	_, err = zombie.Process(ctx, recs[1:2])
	testenv.Must(t, err, "zombie's second batch")
	// The partition moves: the new owner replays from the last commit.
	_, err = owner.Process(ctx, recs[:4])
	testenv.Must(t, err, "new owner's batch")
	if fence, events, _ := storedClicks(t, store, "z"); fence != 3 || events != 4 {
		t.Fatalf("after the new owner: fence %d, %d events; want 3, 4", fence, events)
	}

	_, err = zombie.Process(ctx, recs[2:])
	if !errors.Is(err, state.ErrConflict) {
		t.Fatalf("zombie's batch from its stale cache: %v, want a state conflict", err)
	}
	if hits := testutil.ToFloat64(zombie.m.StateCacheHits); hits != 1 {
		t.Fatalf("the zombie read %v users from its cache, want 1 (the test must exercise the cache)", hits)
	}
	if fence, events, _ := storedClicks(t, store, "z"); fence != 3 || events != 4 {
		t.Fatalf("after the zombie's write: fence %d, %d events; want the new owner's 3, 4", fence, events)
	}
	// The consumer retries the batch: from Redis, fenced.
	_, err = zombie.Process(ctx, recs[2:])
	testenv.Must(t, err, "zombie's retry")
	if fence, events, _ := storedClicks(t, store, "z"); fence != 4 || events != 5 {
		t.Fatalf("after the retry: fence %d, %d events; want 4, 5 (each event once)", fence, events)
	}
}

// A revoked partition's users leave the cache: when the partition comes
// back after another instance worked it, the state is read from Redis
// and the batch succeeds at once.
func TestReleaseDropsThePartitionsCache(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	a := newInstance(t, e, e.redis.Client, "release")
	b := newInstance(t, e, e.redis.Client, "release")
	store := state.New(e.redis.Client, state.Options{Prefix: "release"})
	recs := clicksAt("r", 0, 6)

	// Two batches: a user is cached from their second load on.
	_, err := a.Process(ctx, recs[:1])
	testenv.Must(t, err, "first batch")
	if n := testutil.ToFloat64(a.m.StateCacheBytes); n != 0 {
		t.Fatalf("cache holds %v bytes after one load of one user, want 0 (users seen once are not cached)", n)
	}
	_, err = a.Process(ctx, recs[1:2])
	testenv.Must(t, err, "second batch")
	if n := testutil.ToFloat64(a.m.StateCacheBytes); n <= 0 {
		t.Fatalf("cache holds %v bytes after two batches, want some", n)
	}
	a.Release("cx.clickstream.v1", 0)
	if n := testutil.ToFloat64(a.m.StateCacheBytes); n != 0 {
		t.Fatalf("cache holds %v bytes after the partition was released, want 0", n)
	}
	_, err = b.Process(ctx, recs[:4])
	testenv.Must(t, err, "other instance's batch")
	// The partition comes back.
	_, err = a.Process(ctx, recs[4:])
	testenv.Must(t, err, "batch after the partition came back")
	if c := testutil.ToFloat64(a.m.StateConflicts); c != 0 {
		t.Fatalf("%v state conflicts: the released cache was used", c)
	}
	if fence, events, _ := storedClicks(t, store, "r"); fence != 5 || events != 6 {
		t.Fatalf("fence %d, %d events; want 5, 6", fence, events)
	}
	// And the user is cached again: the next batch needs no read of it.
	more := clicksAt("r", 6, 1)
	_, err = a.Process(ctx, more)
	testenv.Must(t, err, "next batch")
	if hits := testutil.ToFloat64(a.m.StateCacheHits); hits != 1 {
		t.Fatalf("%v cache hits, want 1", hits)
	}
	if fence, events, v := storedClicks(t, store, "r"); fence != 6 || events != 7 || v != 5 {
		t.Fatalf("fence %d, %d events, version %d; want 6, 7, 5", fence, events, v)
	}
}

// testTTL is the state TTL of the TTL tests: set again at most hourly.
const testTTL = 64 * time.Hour

// fakeClock is the state store's clock in the TTL tests.
type fakeClock struct{ now time.Time }

// newTTLInstance is an instance whose store has testTTL and a clock the
// test moves.
func newTTLInstance(t *testing.T, e env, prefix string) (instance, *state.Store, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Now()}
	store := state.New(e.redis.Client, state.Options{Prefix: prefix, TTL: testTTL, Now: func() time.Time { return clock.now }})
	return newInstanceOn(t, e, store, prefix), store, clock
}

// A cached user's document is written without being read again; its TTL
// must still be set again once a 64th of it has passed since it was last
// set, and not before: the cache keeps when that was.
func TestCachedUsersTTLIsSetAgainOnSchedule(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	inst, store, clock := newTTLInstance(t, e, "ttl")
	key := store.Key("t", state.Click)
	pttl := func() time.Duration { return e.redis.Client.PTTL(ctx, key).Val() }
	recs := clicksAt("t", 0, 5)

	// Two batches: a user is cached from their second load on.
	_, err := inst.Process(ctx, recs[:1])
	testenv.Must(t, err, "first batch")
	_, err = inst.Process(ctx, recs[1:2])
	testenv.Must(t, err, "second batch")
	testenv.Must(t, e.redis.Client.PExpire(ctx, key, time.Minute).Err(), "shorten the TTL")

	clock.now = clock.now.Add(59 * time.Minute)
	_, err = inst.Process(ctx, recs[2:3])
	testenv.Must(t, err, "batch 59 minutes later")
	if hits := testutil.ToFloat64(inst.m.StateCacheHits); hits != 1 {
		t.Fatalf("%v cache hits, want 1 (the test must exercise the cache)", hits)
	}
	if d := pttl(); d > time.Minute {
		t.Fatalf("a write 59 minutes after the TTL was set set it again (%s)", d)
	}
	clock.now = clock.now.Add(time.Minute)
	_, err = inst.Process(ctx, recs[3:4])
	testenv.Must(t, err, "batch an hour later")
	if hits := testutil.ToFloat64(inst.m.StateCacheHits); hits != 2 {
		t.Fatalf("%v cache hits, want 2 (the test must exercise the cache)", hits)
	}
	if d := pttl(); d < testTTL-time.Minute {
		t.Fatalf("a write an hour after the TTL was set left it at %s, want %s", d, testTTL)
	}
	if fence, events, _ := storedClicks(t, store, "t"); fence != 3 || events != 4 {
		t.Fatalf("fence %d, %d events; want 3, 4", fence, events)
	}
}

// A worker that merges partition N of both topics writes both of a
// user's documents and caches both: each keeps when its own TTL was set,
// and each is set again on its own schedule.
func TestBothCachedDocumentsKeepTheirOwnTTLSchedule(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	inst, store, clock := newTTLInstance(t, e, "ttl2")
	at := time.Now().Add(-time.Hour).UnixMilli()
	batch := func(i int, withChat bool) []*kgo.Record {
		c := click("m", "m-c"+strconv.Itoa(i), schemas.ClickPageView, at+int64(i)*1000, 0)
		c.Partition, c.Offset = 0, int64(i)
		recs := []*kgo.Record{c}
		if withChat {
			m := chat("m", "m-m"+strconv.Itoa(i), "hello, how do I change my email?", at+int64(i)*1000+500)
			m.Partition, m.Offset = 0, int64(i)
			recs = append(recs, m)
		}
		return recs
	}
	process := func(i int, withChat bool, hits float64) {
		t.Helper()
		_, err := inst.Process(ctx, batch(i, withChat))
		testenv.Must(t, err, "batch")
		if got := testutil.ToFloat64(inst.m.StateCacheHits); got != hits {
			t.Fatalf("batch %d: %v cache hits, want %v (the test must exercise the cache)", i, got, hits)
		}
	}
	shorten := func(side state.Side) {
		testenv.Must(t, e.redis.Client.PExpire(ctx, store.Key("m", side), time.Minute).Err(), "shorten the TTL")
	}
	ttlOf := func(side state.Side) time.Duration { return e.redis.Client.PTTL(ctx, store.Key("m", side)).Val() }

	process(0, false, 0) // the click document's TTL is set at T
	clock.now = clock.now.Add(30 * time.Minute)
	process(1, true, 0) // the chat document's at T+30m; the user is cached from here
	shorten(state.Click)
	shorten(state.Chat)

	clock.now = clock.now.Add(30 * time.Minute) // T+60m: the click document's turn, not the chat's
	process(2, true, 1)
	if c, m := ttlOf(state.Click), ttlOf(state.Chat); c < testTTL-time.Minute || m > time.Minute {
		t.Fatalf("an hour after the click document's TTL was set and half an hour after the chat's: TTLs %s and %s, want %s and at most 1m", c, m, testTTL)
	}
	shorten(state.Click)
	clock.now = clock.now.Add(30 * time.Minute) // T+90m: the chat document's turn
	process(3, true, 2)
	if c, m := ttlOf(state.Click), ttlOf(state.Chat); c > time.Minute || m < testTTL-time.Minute {
		t.Fatalf("half an hour after the click document's TTL was set and an hour after the chat's: TTLs %s and %s, want at most 1m and %s", c, m, testTTL)
	}
}

// A chat partition's cache keeps the user's click document as last read;
// when the click side changes it (another instance owns the click
// partition), the chat side must see the new Facts: a cart filled since
// makes the next negative chat one of a customer in the middle of a
// purchase.
func TestCachedUsersSeeTheOtherStreamsChanges(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	chats := newInstance(t, e, e.redis.Client, "other")
	clicks := newInstance(t, e, e.redis.Client, "other")
	now := time.Now().Add(-time.Hour).UnixMilli()
	// Two batches: a user is cached from their second load on.
	hello := chat("w", "w-m1", "hello, how do I change the email on my account?", now)
	_, err := chats.Process(ctx, []*kgo.Record{hello})
	testenv.Must(t, err, "first chat")
	thanks := chat("w", "w-m2", "thanks", now+100)
	thanks.Offset = 1
	_, err = chats.Process(ctx, []*kgo.Record{thanks})
	testenv.Must(t, err, "second chat")
	view := click("w", "w-c1", schemas.ClickProductView, now+500, 0)
	cart := click("w", "w-c2", schemas.ClickAddToCart, now+1000, 0)
	cart.Offset = 1
	_, err = clicks.Process(ctx, []*kgo.Record{view, cart})
	testenv.Must(t, err, "view and add to cart")
	angry := chat("w", "w-m3", "I was charged twice and nobody answers, I want a refund NOW", now+2000)
	angry.Offset = 2
	res, err := chats.Process(ctx, []*kgo.Record{angry})
	testenv.Must(t, err, "second chat")
	if hits := testutil.ToFloat64(chats.m.StateCacheHits); hits != 1 {
		t.Fatalf("%v cache hits, want 1 (the test must exercise the cache)", hits)
	}
	if res.Alerts != 1 {
		t.Fatalf("%d alerts, want 1", res.Alerts)
	}
	recs := readTopic(t, e.kafka.Brokers, "cx.alerts.v2", 1)
	var a schemas.Alert
	testenv.Must(t, json.Unmarshal(recs[len(recs)-1].Value, &a), "alert")
	if !slices.ContainsFunc(a.Reasons, func(r schemas.AlertReason) bool { return r.Code == schemas.CodeOpenCart }) {
		t.Errorf("alert reasons %+v lack %s: the chat side missed the cart filled since it cached the user", a.Reasons, schemas.CodeOpenCart)
	}
}

// docJSON is a stored document in the JSON layout, whichever encoding
// stored it.
func docJSON(t *testing.T, data []byte) []byte {
	t.Helper()
	j, err := pipeline.DocJSON(data)
	testenv.Must(t, err, "document as JSON")
	return j
}
