package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/testenv"
)

// `gen --history 365d --count N --until T` writes N events with event
// times over the year before T, in time order per partition; the same
// seed and --until write the same records again. Without --count it
// refuses, naming the flag.
func TestGenWritesAYearOfHistory(t *testing.T) {
	k := testenv.StartKafka(t, 2, "cx.clickstream.v1", "cx.chat.v1")
	brokers := "--brokers=" + strings.Join(k.Brokers, ",")
	until := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	args := []string{"gen", brokers, "--history", "365d", "--count", "1500", "--users", "80", "--seed", "9", "--rate", "1000000", "--until", until.Format(time.RFC3339)}
	for range 2 {
		if out, err := runArgs(t, args...); err != nil || !strings.Contains(out, "produced 1500 events (0 failed)") {
			t.Fatalf("gen --history: %v\n%s", err, out)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics("cx.clickstream.v1", "cx.chat.v1"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testenv.Must(t, err, "consumer")
	defer cl.Close()
	var recs []*kgo.Record
	for deadline := time.Now().Add(20 * time.Second); len(recs) < 3000 && time.Now().Before(deadline); {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		recs = append(recs, cl.PollFetches(ctx).Records()...)
		cancel()
	}
	if len(recs) != 3000 {
		t.Fatalf("%d records, want 2 x 1500", len(recs))
	}
	from, to := until.AddDate(-1, 0, 0).UnixMilli(), until.UnixMilli()
	type at struct {
		topic string
		part  int32
	}
	runs := map[at][]*kgo.Record{}
	for _, r := range recs {
		runs[at{r.Topic, r.Partition}] = append(runs[at{r.Topic, r.Partition}], r)
	}
	for where, rs := range runs {
		half := len(rs) / 2
		var last int64
		for i, r := range rs {
			var ev struct {
				EventTime int64 `json:"event_time"`
			}
			testenv.Must(t, json.Unmarshal(r.Value, &ev), "event")
			if ev.EventTime <= from || ev.EventTime > to {
				t.Fatalf("%v: event time %s outside the year before %s", where, time.UnixMilli(ev.EventTime).UTC(), until)
			}
			if i != half && ev.EventTime < last {
				t.Fatalf("%v offset %d: event time goes back", where, r.Offset)
			}
			last = ev.EventTime
			if i < half && string(r.Value) != string(rs[half+i].Value) {
				t.Fatalf("%v: the second run differs at offset %d", where, r.Offset)
			}
		}
	}
	out, err := runArgs(t, "gen", brokers, "--history", "365d")
	if err == nil || !strings.Contains(err.Error(), "--history needs --count") {
		t.Errorf("--history without --count: %v\n%s", err, out)
	}
}
