package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cxstream/cxstream/internal/testenv"
)

// Many writers start at once on a Redis that has never seen the script:
// each must write exactly its own documents, with no false conflict from
// retrying writes that already ran.
func TestConcurrentFirstSavesOnAFreshRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	s := New(r.Client, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var writes []Write
			for i := range 300 {
				writes = append(writes, Write{User: fmt.Sprintf("w%d-u%d", w, i), Side: Click, Data: []byte("{}")})
			}
			errs <- s.Save(ctx, writes)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	docs, err := s.Load(ctx, []string{"w0-u0", "w7-u299"})
	testenv.Must(t, err, "load")
	if docs["w0-u0"].Click.Version != 1 || docs["w7-u299"].Click.Version != 1 {
		t.Fatalf("versions %+v", docs)
	}
}

func TestStaleWriteIsAConflict(t *testing.T) {
	r := testenv.StartRedis(t)
	s := New(r.Client, Options{})
	ctx := context.Background()
	testenv.Must(t, s.Save(ctx, []Write{{User: "u", Side: Chat, Data: []byte("1")}}), "first")
	err := s.Save(ctx, []Write{{User: "u", Side: Chat, Expect: 0, Data: []byte("2")}, {User: "v", Side: Chat, Data: []byte("3")}})
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || len(ce.Keys) != 1 {
		t.Fatalf("got %v", err)
	}
	docs, _ := s.Load(ctx, []string{"u", "v"})
	if string(docs["u"].Chat.Data) != "1" || string(docs["v"].Chat.Data) != "3" {
		t.Fatalf("the stale write landed or the good one did not: %+v", docs)
	}
}

// A batch larger than one script call, with stale writes spread over its
// calls: exactly the stale ones conflict, every other document is written
// once; on a Redis that lost its scripts (SCRIPT FLUSH) too.
func TestLargeSaveConflictsExactlyTheStaleWrites(t *testing.T) {
	r := testenv.StartRedis(t)
	s := New(r.Client, Options{})
	ctx := context.Background()
	const n = 3*casBatchSize + 5
	var first []Write
	for i := range n {
		first = append(first, Write{User: fmt.Sprintf("u%d", i), Side: Click, Data: []byte("1")})
	}
	testenv.Must(t, s.Save(ctx, first), "first save")
	testenv.Must(t, r.Client.ScriptFlush(ctx).Err(), "script flush")
	var second []Write
	stale := map[string]bool{}
	for i := range n {
		w := Write{User: fmt.Sprintf("u%d", i), Side: Click, Expect: 1, Data: []byte("2")}
		if i%7 == 3 {
			w.Expect = 0
			stale[s.Key(w.User, Click)] = true
		}
		second = append(second, w)
	}
	err := s.Save(ctx, second)
	var ce *ConflictError
	if !errors.As(err, &ce) || len(ce.Keys) != len(stale) {
		t.Fatalf("want %d conflicts, got %v", len(stale), err)
	}
	for _, k := range ce.Keys {
		if !stale[k] {
			t.Fatalf("%s reported as a conflict but its write was current", k)
		}
	}
	var ids []string
	for i := range n {
		ids = append(ids, fmt.Sprintf("u%d", i))
	}
	docs, err := s.Load(ctx, ids)
	testenv.Must(t, err, "load")
	for i, id := range ids {
		d := docs[id].Click
		want, version := "2", int64(2)
		if i%7 == 3 {
			want, version = "1", 1
		}
		if string(d.Data) != want || d.Version != version {
			t.Fatalf("%s: data %q version %d, want %q version %d", id, d.Data, d.Version, want, version)
		}
	}
}

// On Redis Cluster a script's keys must share a slot: documents are
// written one script call each, with the same compare-and-set.
func TestSaveOnRedisCluster(t *testing.T) {
	c := testenv.StartRedisCluster(t, 3)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs})
	t.Cleanup(func() { rdb.Close() })
	s := New(rdb, Options{TTL: time.Hour})
	ctx := context.Background()
	testenv.Must(t, s.Prepare(ctx), "prepare")
	var writes []Write
	for i := range 300 {
		writes = append(writes, Write{User: fmt.Sprintf("u%d", i), Side: Chat, Data: []byte("a")})
	}
	testenv.Must(t, s.Save(ctx, writes), "save")
	err := s.Save(ctx, []Write{{User: "u1", Side: Chat, Expect: 0, Data: []byte("b")}, {User: "u2", Side: Chat, Expect: 1, Data: []byte("c")}})
	var ce *ConflictError
	if !errors.As(err, &ce) || len(ce.Keys) != 1 || ce.Keys[0] != s.Key("u1", Chat) {
		t.Fatalf("want a conflict on u1 alone, got %v", err)
	}
	docs, err := s.Load(ctx, []string{"u1", "u2", "u299"})
	testenv.Must(t, err, "load")
	if string(docs["u1"].Chat.Data) != "a" || string(docs["u2"].Chat.Data) != "c" || docs["u2"].Chat.Version != 2 || docs["u299"].Chat.Version != 1 {
		t.Fatalf("documents %+v", docs)
	}
}

// A write refreshes the document's TTL when the last refresh, as the
// writer read it with the document, is a 64th of the TTL old or more (or
// unknown, as on documents written before the refresh time was kept), and
// leaves it alone in between: on a single Redis (one script call for the
// batch) and on Redis Cluster (one each). A writer that keeps what a save
// told it (the state cache) makes the same decisions without reading.
func TestWritesRefreshTheTTLAtMostEvery64thOfIt(t *testing.T) {
	for _, mode := range []string{"single", "cluster"} {
		t.Run(mode, func(t *testing.T) {
			var rdb redis.UniversalClient
			if mode == "single" {
				rdb = testenv.StartRedis(t).Client
			} else {
				rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: testenv.StartRedisCluster(t, 3).Addrs})
				t.Cleanup(func() { rdb.Close() })
			}
			ctx := context.Background()
			now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
			const ttl = 64 * time.Hour // refreshed at most hourly
			s := New(rdb, Options{TTL: ttl, Now: func() time.Time { return now }})
			pttl := func(user string) time.Duration { return rdb.PTTL(ctx, s.Key(user, Click)).Val() }
			write := func(user string, version int64) {
				t.Helper()
				docs, err := s.Load(ctx, []string{user})
				testenv.Must(t, err, "load")
				d := docs[user].Click
				if d.Version != version {
					t.Fatalf("%s: version %d, want %d", user, d.Version, version)
				}
				testenv.Must(t, s.Save(ctx, []Write{{User: user, Side: Click, Expect: d.Version, Data: []byte("d"), TTLSetAt: d.TTLSetAt}}), "save")
			}

			write("u", 0)
			if d := pttl("u"); d < ttl-time.Minute || d > ttl {
				t.Fatalf("first write: TTL %s, want %s", d, ttl)
			}
			testenv.Must(t, rdb.PExpire(ctx, s.Key("u", Click), time.Minute).Err(), "shorten")
			now = now.Add(59 * time.Minute)
			write("u", 1)
			if d := pttl("u"); d > time.Minute {
				t.Fatalf("write 59 minutes after a refresh set the TTL again (%s)", d)
			}
			now = now.Add(time.Minute)
			write("u", 2)
			if d := pttl("u"); d < ttl-time.Minute {
				t.Fatalf("write an hour after a refresh left the TTL at %s, want %s", d, ttl)
			}

			// A document from before refresh times were kept: no field t,
			// no TTL.
			testenv.Must(t, rdb.HSet(ctx, s.Key("old", Click), "v", 3, "s", "d").Err(), "old document")
			write("old", 3)
			if d := pttl("old"); d < ttl-time.Minute {
				t.Fatalf("first write to an old document: TTL %s, want %s", d, ttl)
			}

			// A writer that does not read again: the save says when it set
			// the TTL, and the next write decides from that.
			kept := []Write{{User: "kept", Side: Click, Data: []byte("d")}}
			testenv.Must(t, s.Save(ctx, kept), "first save")
			if kept[0].TTLSetAt != now.UnixMilli() {
				t.Fatalf("after a write that set the TTL: TTLSetAt %d, want %d", kept[0].TTLSetAt, now.UnixMilli())
			}
			set := kept[0].TTLSetAt
			testenv.Must(t, rdb.PExpire(ctx, s.Key("kept", Click), time.Minute).Err(), "shorten")
			now = now.Add(59 * time.Minute)
			kept[0].Expect = 1
			testenv.Must(t, s.Save(ctx, kept), "second save")
			if d := pttl("kept"); d > time.Minute || kept[0].TTLSetAt != set {
				t.Fatalf("write 59 minutes after a refresh: TTL %s, TTLSetAt %d (want the TTL alone and %d)", d, kept[0].TTLSetAt, set)
			}
			now = now.Add(time.Minute)
			kept[0].Expect = 2
			testenv.Must(t, s.Save(ctx, kept), "third save")
			if d := pttl("kept"); d < ttl-time.Minute || kept[0].TTLSetAt != now.UnixMilli() {
				t.Fatalf("write an hour after a refresh: TTL %s, TTLSetAt %d (want %s and %d)", d, kept[0].TTLSetAt, ttl, now.UnixMilli())
			}
			docs, err := s.Load(ctx, []string{"kept"})
			testenv.Must(t, err, "load")
			if got := docs["kept"].Click; got.Version != 3 || got.TTLSetAt != now.UnixMilli() {
				t.Fatalf("stored version %d, TTL set at %d; want 3 and %d", got.Version, got.TTLSetAt, now.UnixMilli())
			}
		})
	}
}
