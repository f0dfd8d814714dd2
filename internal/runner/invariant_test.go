package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

// history makes a random clickstream over the last 60 days: users come
// back on random days, walk part of the funnel, sometimes buy, and go
// quiet for weeks, so windows run out and inactivity checks fall due
// while other users' events move the watermark.
func history(seed uint64, users int) []*kgo.Record {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	day := int64(24 * time.Hour / time.Millisecond)
	start := time.Now().Add(-60*24*time.Hour).UnixMilli() / 1000 * 1000
	type ev struct {
		at  int64
		rec *kgo.Record
	}
	var all []ev
	steps := []string{schemas.ClickProductView, schemas.ClickAddToCart, schemas.ClickCheckoutStart, schemas.ClickPurchase}
	for u := range users {
		user := fmt.Sprintf("h-%03d", u)
		visits := 1 + rng.IntN(6)
		for v := range visits {
			at := start + rng.Int64N(58*day)
			reach := rng.IntN(len(steps)) + 1
			for s := 0; s < reach; s++ {
				at += rng.Int64N(3 * 60 * 60 * 1000) // up to 3 h between steps: some windows run out
				amount := 0.0
				if steps[s] == schemas.ClickPurchase {
					amount = float64(10 + rng.IntN(200))
				}
				all = append(all, ev{at, click(user, fmt.Sprintf("%s-%d-%d", user, v, s), steps[s], at, amount)})
			}
		}
	}
	slices.SortStableFunc(all, func(a, b ev) int { return int(a.at - b.at) })
	out := make([]*kgo.Record, len(all))
	for i, e := range all {
		out[i] = e.rec
	}
	return out
}

// snapshot reads every key of a prefix but the support queue (it records
// when an item was queued, by the wall clock), values byte for byte.
func snapshot(t *testing.T, e env, prefix string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, k := range e.redis.Client.Keys(ctx, prefix+":*").Val() {
		if strings.Contains(k, "{queue}") {
			continue
		}
		name := strings.TrimPrefix(k, prefix)
		switch e.redis.Client.Type(ctx, k).Val() {
		case "string":
			out[name] = e.redis.Client.Get(ctx, k).Val()
		case "hash":
			// The document, not its CAS version: how many writes made it
			// depends on the batch sizes.
			out[name] = e.redis.Client.HGet(ctx, k, "s").Val()
		case "zset":
			z := e.redis.Client.ZRangeWithScores(ctx, k, 0, -1).Val()
			b, _ := json.Marshal(z)
			out[name] = string(b)
		}
	}
	return out
}

func topicAlertIDs(t *testing.T, brokers []string, topic string) []string {
	var ids []string
	for _, r := range readTopic(t, brokers, topic, 0) {
		if r.Value == nil {
			continue
		}
		var a schemas.Alert
		testenv.Must(t, json.Unmarshal(r.Value, &a), "alert")
		ids = append(ids, a.AlertID)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// The result is a function of the input alone: the same clickstream
// history gives byte-identical Redis state (documents, timers, watermarks)
// and the same set of alert ids whether it is consumed in batches of 2000,
// 7 or 1 record, with timer ticks every 10 s or 10 ms, or by two instances
// with a rebalance in the middle.
func TestResultIsAFunctionOfTheInput(t *testing.T) {
	variants := []struct {
		name      string
		poll      int
		tick      time.Duration
		rebalance bool
		duePage   int
	}{
		{"batches of 2000, 10s ticks", 2000, 10 * time.Second, false, 0},
		{"batches of 7, 10ms ticks", 7, 10 * time.Millisecond, false, 0},
		{"batches of 1, 10ms ticks", 1, 10 * time.Millisecond, false, 0},
		{"two instances, rebalance", 50, 50 * time.Millisecond, true, 0},
		{"batches of 500, due timers read 3 at a time", 500, 10 * time.Millisecond, false, 3},
	}
	var alertTopics []string
	for i := range variants {
		alertTopics = append(alertTopics, fmt.Sprintf("alerts-%d", i))
	}
	e := newEnv(t, alertTopics...)
	recs := history(11, 120)
	produce(t, e.kafka.Brokers, recs...)
	t.Logf("history: %d clicks of 120 users over 60 days", len(recs))

	var want map[string]string
	var wantAlerts []string
	for i, v := range variants {
		prefix := fmt.Sprintf("inv%d", i)
		cfg := e.config(prefix, prefix)
		cfg.Topics.Alerts = alertTopics[i]
		cfg.Processing.MaxPollRecords = v.poll
		cfg.Processing.TimerInterval = v.tick
		cfg.Processing.IdleAdvance = 0 // event time only: the wall clock must not matter
		cfg.Processing.AllowedLateness = time.Minute
		cfg.Churn.InactivityCheck = 5 * 24 * time.Hour
		cfg.HTTP.Addr = ""
		r := startWith(t, cfg, Options{Scorer: sharedScorer(t), DuePage: v.duePage})
		if v.rebalance {
			testenv.Eventually(t, 60*time.Second, "a third handled", func() bool { return r.handled() >= float64(len(recs)/3) })
			r2 := start(t, cfg)
			testenv.Eventually(t, 60*time.Second, "the second instance took partitions", func() bool { return r2.Metrics.Sum("cx_assigned_partitions", nil) > 0 })
			r.stop(t)
			r = r2
		}
		testenv.Eventually(t, 120*time.Second, v.name+": every record handled", func() bool {
			lag, err := groupLag(e.kafka.Brokers, prefix)
			return err == nil && lag == 0
		})
		r.stop(t)
		got := snapshot(t, e, prefix)
		alerts := topicAlertIDs(t, e.kafka.Brokers, alertTopics[i])
		if i == 0 {
			want, wantAlerts = got, alerts
			if len(got) < 120 {
				t.Fatalf("%s: only %d keys stored", v.name, len(got))
			}
			continue
		}
		for k, w := range want {
			if g := got[k]; g != w {
				at := 0
				for at < len(g) && at < len(w) && g[at] == w[at] {
					at++
				}
				from := max(0, at-80)
				t.Errorf("%s: %s differs at byte %d\n got ...%.240s\nwant ...%.240s", v.name, k, at, g[from:], w[from:])
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: extra key %s", v.name, k)
			}
		}
		if !slices.Equal(alerts, wantAlerts) {
			t.Errorf("%s: %d alert ids, want %d", v.name, len(alerts), len(wantAlerts))
		}
	}
	t.Logf("%d keys and %d alert ids identical across %d variants", len(want), len(wantAlerts), len(variants))
}

// groupLag is how many input records the group has not committed yet.
func groupLag(brokers []string, group string) (int64, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "cx.clickstream.v1", "cx.chat.v1")
	if err != nil {
		return 0, err
	}
	committed, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(o.Topic, o.Partition)
		at := int64(0)
		if ok {
			at = c.At
		}
		lag += o.Offset - at
	})
	return lag, nil
}
