package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/gen"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/testenv"
)

// eventTimeWorld is the input every variant of the event-time test gets:
// a year of synthetic history written by `cxstream gen --history` (the
// same seed and --until give the same records), then live traffic stamped
// with the current time.
type eventTimeWorld struct {
	historyArgs []string // gen flags, without --rate
	historyLen  int
	live        []gen.Event
}

// newEventTimeWorld makes the input: chatShare as `gen --chat-share`
// (0: clickstream only).
func newEventTimeWorld(chatShare float64) eventTimeWorld {
	now := time.Now().Truncate(time.Second)
	const users, historyLen = 200, 3000
	w := eventTimeWorld{historyLen: historyLen, historyArgs: []string{
		"--history", "365d", "--count", fmt.Sprint(historyLen), "--users", fmt.Sprint(users), "--seed", "21",
		"--chat-share", fmt.Sprint(chatShare), "--until", now.Add(-2 * time.Minute).Format(time.RFC3339)}}
	// The same users, live: 600 events over the last minute.
	share := chatShare
	if share == 0 {
		share = -1
	}
	g := gen.New(gen.Options{Users: users, Seed: 22, ChatShare: share})
	for i := range 600 {
		w.live = append(w.live, g.Next(now.Add(-time.Minute+time.Duration(i)*100*time.Millisecond)))
	}
	return w
}

// genHistory writes the year of history into the stage's topics with
// `cxstream gen`, at rate events a second.
func (s *stage) genHistory(w eventTimeWorld, rate int) {
	s.t.Helper()
	if err := s.runGen(w, rate); err != nil {
		s.t.Fatal(err)
	}
}

// runGen is genHistory for another goroutine than the test's.
func (s *stage) runGen(w eventTimeWorld, rate int) error {
	args := append([]string{"gen", "--config", s.cfgPath, "--rate", fmt.Sprint(rate)}, w.historyArgs...)
	out, err := exec.Command(binPath, args...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("produced %d events (0 failed)", w.historyLen)) {
		return fmt.Errorf("cxstream %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// produceLive sends generated events with franz-go's default partitioner,
// the one `cxstream gen` uses, so a user's live records join their
// history on the same partition.
func (s *stage) produceLive(evs []gen.Event) {
	s.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	testenv.Must(s.t, err, "producer")
	defer cl.Close()
	recs := make([]*kgo.Record, len(evs))
	for i, ev := range evs {
		topic := s.topics["clickstream"]
		if ev.Kind == gen.Chat {
			topic = s.topics["chat"]
		}
		recs[i] = &kgo.Record{Topic: topic, Key: []byte(ev.Key), Value: ev.Value}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testenv.Must(s.t, cl.ProduceSync(ctx, recs...).FirstErr(), "produce live events")
}

// produceLivePaced sends the live events in pieces with pauses.
func (s *stage) produceLivePaced(evs []gen.Event, pieces int, pause time.Duration) {
	size := (len(evs) + pieces - 1) / pieces
	for i := 0; i < len(evs); i += size {
		s.produceLive(evs[i:min(i+size, len(evs))])
		time.Sleep(pause)
	}
}

// snapshot reads every key in the stage's Redis, values byte for byte
// but for the stage's own topic names (in timer keys and fences), which
// read as "<topic>-clickstream" and so on:
// users' documents (without their CAS version: how many writes made a
// document depends on the batch sizes), timer sets with their deadlines
// and watermarks. The support queue is left out: it records when an item
// was queued by the wall clock (agents work in real time).
func (s *stage) snapshot() map[string]string {
	s.t.Helper()
	ctx := context.Background()
	c := s.redis.Client
	out := map[string]string{}
	keys, err := c.Keys(ctx, "*").Result()
	testenv.Must(s.t, err, "keys")
	for _, k := range keys {
		if strings.Contains(k, "{queue}") {
			continue
		}
		var v string
		switch typ := c.Type(ctx, k).Val(); typ {
		case "string":
			v = c.Get(ctx, k).Val()
		case "hash":
			v = c.HGet(ctx, k, "s").Val()
			if doc, err := pipeline.DocJSON([]byte(v)); err == nil {
				v = string(doc) // a state document, in either encoding, as JSON
			}
		case "zset":
			b, _ := json.Marshal(c.ZRangeWithScores(ctx, k, 0, -1).Val())
			v = string(b)
		default:
			// A key of a kind this test does not know still counts.
			v = "(" + typ + ")"
		}
		out[strings.ReplaceAll(k, s.prefix, "<topic>-")] = strings.ReplaceAll(v, s.prefix, "<topic>-")
	}
	return out
}

// alertIDs is the set of alert ids on the stage's alert topic, each
// after its alert type ("churn_risk:3f2a..."); a negative chat's with
// its priority and reason codes after it, which say how urgent it is in
// the support queue ("negative_chat:9c9e...:HIGH:open_cart,...").
func (s *stage) alertIDs() []string {
	s.t.Helper()
	var ids []string
	for _, r := range s.readAlerts() {
		if r.Payload == "" {
			continue
		}
		var a struct {
			Type     string `json:"type"`
			AlertID  string `json:"alert_id"`
			Priority string `json:"priority"`
			Reasons  []struct {
				Code string `json:"code"`
			} `json:"reasons"`
		}
		testenv.Must(s.t, json.Unmarshal([]byte(r.Payload), &a), "alert")
		id := a.Type + ":" + a.AlertID
		if a.Type == "negative_chat" {
			id += ":" + a.Priority + ":"
			for _, r := range a.Reasons {
				id += r.Code + ","
			}
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// finalState waits until every record is committed, stops the instances
// and reads the state and the alert ids.
func (s *stage) finalState() (map[string]string, []string) {
	s.t.Helper()
	s.waitCaughtUp(2 * time.Minute)
	for _, p := range s.procs {
		if p.alive() {
			p.term(20 * time.Second)
		}
	}
	return s.snapshot(), s.alertIDs()
}

// The result is a function of the input alone, on the real broker and the
// built binary: a year of clickstream history (`cxstream gen --history
// 365d`, 3,000 events of 200 users) followed by a minute of live traffic
// gives byte-identical Redis state (documents, timer sets with their
// deadlines, watermarks) and the same set of alert ids whether it is
// loaded before the processor starts (all at once), backfilled into a
// running processor and then followed by live traffic in pieces with
// pauses, processed while the processor is killed with SIGKILL and
// restarted three times, or processed by one instance joined by two more
// in the middle (a rebalance) and left by one. Watermarks move by event
// time only (idle_advance 0): an idle advance would stamp the state with
// the wall clock of the moment the partition fell idle.
func TestEventTimeResultIsAFunctionOfTheInput(t *testing.T) {
	eventTimeVariants(t, newEventTimeWorld(0))
}

// The same with chat messages among the clicks (gen's default share),
// everything compared, including what each stream's processors read of the
// other: churn's score, last alert time and alerts (from the chat side's
// negative messages and contacts) and negative chats' priority and
// reasons (from the click side's purchases and funnel stage). The
// consumer merges partition N of both topics by event time, so how far
// one topic was read ahead of the other in a variant changes nothing, as
// long as no record of one topic comes more than align_wait (2 s here)
// after the other's: a failure logs how many records the merge took out
// of that order (cx_stream_merge_inversions_total).
func TestEventTimeWithChatsIsAFunctionOfTheInput(t *testing.T) {
	eventTimeVariants(t, newEventTimeWorld(0.15))
}

func eventTimeVariants(t *testing.T, w eventTimeWorld) {
	// A variant streams its input into a running processor, so `cxstream
	// gen` writing the two topics and the processor reading them share
	// the machine: align_wait is how long a caught-up topic holds the
	// other's later records back for a record written a moment after
	// them. 200 ms (the default) is shorter than the stalls of a loaded
	// CI machine running the race-built binaries side by side.
	opts := stageOptions{partitions: 6, extraProcessing: "  idle_advance: 0s\n  timer_interval: 100ms\n  align_wait: 2s\n"}

	var want map[string]string
	var wantAlerts []string
	// earlier: merge inversions counted by instances no longer running.
	compare := func(t *testing.T, s *stage, earlier float64) {
		t.Helper()
		s.waitCaughtUp(2 * time.Minute)
		inversions := earlier
		for _, p := range s.procs {
			if p.alive() {
				inversions += p.metric("cx_stream_merge_inversions_total")
			}
		}
		got, alerts := s.finalState()
		if d := diffState(want, got); d != "" {
			t.Errorf("state differs from all-at-once:\n%s", d)
		}
		if d := diffIDs(wantAlerts, alerts); d != "" {
			t.Errorf("alert ids differ from all-at-once: %s", d)
		}
		if t.Failed() || inversions > 0 {
			t.Logf("the merge handed over %v records after a later one of the other topic", inversions)
		}
	}

	ok := t.Run("all at once", func(t *testing.T) {
		s := newStage(t, opts)
		s.genHistory(w, 1_000_000)
		s.produceLive(w.live)
		s.start()
		want, wantAlerts = s.finalState()
		kinds := map[string]int{}
		for k := range want {
			switch {
			case strings.HasPrefix(k, "cx:timers:"):
				kinds["timer sets"]++
			case strings.HasPrefix(k, "cx:wm:"):
				kinds["watermarks"]++
			default:
				kinds["documents"]++
			}
		}
		if kinds["documents"] < 190 || kinds["timer sets"] == 0 || kinds["watermarks"] == 0 || len(wantAlerts) < 20 {
			t.Fatalf("too little to compare: %v, %d alert ids", kinds, len(wantAlerts))
		}
		t.Logf("%d + %d events: %v, %d alert ids", w.historyLen, len(w.live), kinds, len(wantAlerts))
	})
	if !ok {
		t.FailNow()
	}

	// The variants are independent worlds (topics, group, Redis) compared
	// with the first: run side by side.
	t.Run("backfill a year then live traffic in pieces", func(t *testing.T) {
		t.Parallel()
		s := newStage(t, opts)
		s.start()
		s.genHistory(w, 2000) // 1.5 s of producing into the running processor
		s.waitCaughtUp(time.Minute)
		s.produceLivePaced(w.live, 4, 300*time.Millisecond)
		compare(t, s, 0)
	})

	t.Run("kill -9 three times while it streams in", func(t *testing.T) {
		t.Parallel()
		// Offsets are committed seldom, so a kill leaves applied but
		// uncommitted records for the restart to read again.
		o := opts
		o.extraProcessing += "  commit_interval: 1500ms\n"
		s := newStage(t, o)
		// Static membership: the restarted instance takes its partitions
		// back at once instead of after the session timeout.
		p := s.startAs("cx-0")
		replayed, inversions := 0.0, 0.0
		killAfter := func(applied float64) {
			testenv.Eventually(t, time.Minute, "the instance applying records", func() bool {
				return !p.alive() || p.metric("cx_events_applied_total") >= applied
			})
			replayed += p.metric("cx_events_replay_skipped_total")
			inversions += p.metric("cx_stream_merge_inversions_total")
			p.kill()
			p = s.startAs("cx-0")
		}
		genErr := make(chan error, 1)
		go func() { genErr <- s.runGen(w, 1000) }() // 3 s of producing
		killAfter(400)
		killAfter(400)
		testenv.Must(t, <-genErr, "gen")
		s.produceLive(w.live[:300])
		killAfter(100)
		s.produceLivePaced(w.live[300:], 2, 200*time.Millisecond)
		s.waitCaughtUp(time.Minute)
		replayed += p.metric("cx_events_replay_skipped_total")
		if replayed == 0 {
			t.Error("no restart read an applied record again: the kills interrupted nothing")
		}
		t.Logf("3 SIGKILLs; the restarts skipped %v records already applied", replayed)
		compare(t, s, inversions)
	})

	t.Run("one instance joined by two then one leaves", func(t *testing.T) {
		t.Parallel()
		s := newStage(t, opts)
		s.start()
		genErr := make(chan error, 1)
		go func() { genErr <- s.runGen(w, 1000) }()
		time.Sleep(500 * time.Millisecond)
		b := s.start()
		s.start()
		// b takes partitions from the first in the rebalance.
		testenv.Eventually(t, time.Minute, "the joined instance assigned partitions", func() bool {
			return !b.alive() || b.metric("cx_assigned_partitions") > 0
		})
		testenv.Must(t, <-genErr, "gen")
		s.produceLive(w.live[:300])
		testenv.Eventually(t, time.Minute, "the joined instance applying records", func() bool {
			return !b.alive() || b.metric("cx_events_applied_total") > 0
		})
		left := b.metric("cx_stream_merge_inversions_total")
		b.term(20 * time.Second) // its partitions, state and watermarks move to the other two
		s.produceLivePaced(w.live[300:], 2, 300*time.Millisecond)
		compare(t, s, left)
	})
}

// diffState says which keys differ and, inside JSON documents, which
// fields, counted over all keys, with a few examples.
func diffState(want, got map[string]string) string {
	var b strings.Builder
	fields := map[string]int{}
	examples := 0
	differ := 0
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			fmt.Fprintf(&b, "missing key %s\n", k)
			differ++
			continue
		}
		if g == w {
			continue
		}
		differ++
		var wj, gj any
		if json.Unmarshal([]byte(w), &wj) == nil && json.Unmarshal([]byte(g), &gj) == nil {
			for _, path := range diffJSON("", wj, gj) {
				fields[path]++
			}
		} else {
			fields["(not json)"]++
		}
		if examples < 3 {
			examples++
			at := 0
			for at < len(g) && at < len(w) && g[at] == w[at] {
				at++
			}
			from := max(0, at-100)
			fmt.Fprintf(&b, "%s differs at byte %d\n  got ...%.250s\n want ...%.250s\n", k, at, g[from:], w[from:])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			fmt.Fprintf(&b, "extra key %s\n", k)
			differ++
		}
	}
	if differ == 0 {
		return ""
	}
	fmt.Fprintf(&b, "%d of %d keys differ; fields that differ (keys): %v", differ, len(want), fields)
	return b.String()
}

// diffJSON lists the paths at which two decoded JSON values differ; map
// keys that are user or conversation ids read as "*".
func diffJSON(path string, a, b any) []string {
	am, aok := a.(map[string]any)
	bm, bok := b.(map[string]any)
	if !aok || !bok {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			return []string{path}
		}
		return nil
	}
	var out []string
	for k := range am {
		name := k
		if strings.HasPrefix(k, "user-") {
			name = "*"
		}
		out = append(out, diffJSON(path+"."+name, am[k], bm[k])...)
	}
	for k := range bm {
		if _, ok := am[k]; !ok {
			out = append(out, path+"."+k+"(extra)")
		}
	}
	return out
}

// diffIDs says which ids one sorted set has that the other lacks.
func diffIDs(want, got []string) string {
	if slices.Equal(want, got) {
		return ""
	}
	var missing, extra []string
	for _, id := range want {
		if _, ok := slices.BinarySearch(got, id); !ok {
			missing = append(missing, id)
		}
	}
	for _, id := range got {
		if _, ok := slices.BinarySearch(want, id); !ok {
			extra = append(extra, id)
		}
	}
	byType := map[string]int{}
	for _, id := range append(slices.Clone(missing), extra...) {
		byType[id[:strings.IndexByte(id+":", ':')]]++
	}
	return fmt.Sprintf("%d ids, want %d: %d missing %v, %d extra %v; by type %v", len(got), len(want), len(missing), missing[:min(4, len(missing))], len(extra), extra[:min(4, len(extra))], byType)
}
