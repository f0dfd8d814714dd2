package bench

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/schemas"
)

// TestPeerFunnelRulesGiveCxstreamsFigures runs cxstream over a generated
// dataset with a short funnel window (so attempts convert, are abandoned by
// a later event and by timers) and checks that the rules the Kafka Streams
// peer implements (test/peers/kstreams PeerProcessor, mirrored here) give
// the same funnel figures from the same records. A change to cxstream's
// funnel semantics that the peer does not follow fails here, without Java.
func TestPeerFunnelRulesGiveCxstreamsFigures(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	k := testenv.StartKafka(t, 2)
	r := testenv.StartRedis(t)
	b := &bencher{o: Options{Brokers: k.Brokers, RedisAddr: r.Addr, Log: io.Discard}, run: "cmp"}
	b.o.defaults()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	testenv.Must(t, err, "kafka client")
	defer cl.Close()
	b.adm = kadm.NewClient(cl)
	b.rdb = redis.NewClient(&redis.Options{Addr: r.Addr})
	defer b.rdb.Close()

	d, err := b.dataset(ctx, "cmp", 6000, 300, 0.15, 2)
	testenv.Must(t, err, "dataset")
	defs := funnel.DefaultDefinitions()
	defs[0].Window = time.Second
	lateness := 100 * time.Millisecond
	cfg := b.comparisonConfig(d, defs, lateness)
	_, got, err := b.processForFigures(ctx, d, cfg, nil)
	testenv.Must(t, err, "cxstream")
	// The comparison's second cxstream run: the peer's work alone.
	_, gotPeerWork, err := b.processForFigures(ctx, d, withPeerWork(b.comparisonConfig(d, defs, lateness)), peerWork)
	testenv.Must(t, err, "cxstream with the peer's work")

	want := peerModel(t, ctx, k.Brokers, d, defs[0], lateness.Milliseconds())
	if want.Conversions == 0 || want.Abandonments == 0 || want.Entries == 0 {
		t.Fatalf("the dataset does not exercise the funnel: %+v", want)
	}
	if err := CompareFunnels("cxstream", got, "peer rules", []FunnelFigures{want}); err != nil {
		t.Fatal(err)
	}
	if err := CompareFunnels("cxstream with the peer's work", gotPeerWork, "peer rules", []FunnelFigures{want}); err != nil {
		t.Fatal(err)
	}
}

// peerModel applies the peer's rules to d's click records, partition by
// partition in offset order, firing timers as each partition's click
// watermark passes them.
func peerModel(t *testing.T, ctx context.Context, brokers []string, d *dataset, def funnel.Definition, latenessMs int64) FunnelFigures {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(d.clickstream), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testenv.Must(t, err, "reader")
	defer cl.Close()
	byPartition := map[int32][]*kgo.Record{}
	clicks := 0
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, d.clickstream)
	testenv.Must(t, err, "end offsets")
	ends.Each(func(o kadm.ListedOffset) { clicks += int(o.Offset) })
	for got := 0; got < clicks; {
		f := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read clicks: %v", err)
		}
		f.EachRecord(func(r *kgo.Record) {
			byPartition[r.Partition] = append(byPartition[r.Partition], r)
			got++
		})
	}
	type attempt struct {
		step             int
		entered, lastRel int64
	}
	steps := map[string]int{}
	for i, s := range def.Steps {
		for _, ev := range s.Events {
			steps[ev] |= 1 << i
		}
	}
	window := def.Window.Milliseconds()
	out := FunnelFigures{Name: def.Name, Reached: make([]int64, len(def.Steps))}
	due := func(a *attempt) int64 {
		if a.step < 0 {
			return math.MaxInt64
		}
		return max(a.entered+window, a.lastRel+latenessMs+1)
	}
	abandon := func(a *attempt) { a.step, a.entered = -1, 0; out.Abandonments++ }
	for _, recs := range byPartition {
		users := map[string]*attempt{}
		wm := int64(math.MinInt64)
		for _, r := range recs {
			var ev schemas.ClickEvent
			testenv.Must(t, json.Unmarshal(r.Value, &ev), "click")
			wm = max(wm, ev.EventTime-latenessMs)
			a := users[ev.UserID]
			if a == nil {
				a = &attempt{step: -1}
				users[ev.UserID] = a
			}
			if m := steps[ev.Type]; m != 0 {
				a.lastRel = max(a.lastRel, ev.EventTime)
				if a.step >= 0 && ev.EventTime >= a.entered+window {
					abandon(a)
				}
				switch {
				case a.step < 0 && m&1 != 0:
					a.step, a.entered = 0, ev.EventTime
					out.Reached[0]++
				case a.step >= 0 && m&(1<<(a.step+1)) != 0:
					a.step++
					out.Reached[a.step]++
					if a.step == len(def.Steps)-1 {
						out.Conversions++
						a.step, a.entered = -1, 0
					}
				}
			}
			for _, u := range users {
				if due(u) <= wm {
					abandon(u)
				}
			}
		}
	}
	out.Entries = out.Reached[0]
	return out
}
