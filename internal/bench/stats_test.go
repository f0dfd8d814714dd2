package bench

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/processors/sentiment"
)

func TestSummarizeGivesMedianAndRange(t *testing.T) {
	cases := []struct {
		in            []float64
		med, min, max float64
		text          string
	}{
		{[]float64{30, 10, 20}, 20, 10, 30, "20.0 (10.0-30.0)"},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, "2.5 (1.0-4.0)"},
		{[]float64{7}, 7, 7, 7, "7.0"},
	}
	for _, c := range cases {
		s := Summarize(c.in)
		if s.Median != c.med || s.Min != c.min || s.Max != c.max || s.String() != c.text {
			t.Errorf("Summarize(%v) = %+v %q, want median %v range %v-%v %q", c.in, s, s.String(), c.med, c.min, c.max, c.text)
		}
		if len(s.Values) != len(c.in) || s.Values[0] != c.in[0] {
			t.Errorf("Summarize(%v) values %v, want them in run order", c.in, s.Values)
		}
	}
	if s := Summarize(nil); s.Median != 0 || len(s.Values) != 0 {
		t.Errorf("Summarize(nil) = %+v", s)
	}
}

func TestCompareFunnelsShowsBothSidesOfAMismatch(t *testing.T) {
	a := []FunnelFigures{{Name: "purchase", Entries: 10, Reached: []int64{10, 5, 2, 1}, Conversions: 1, Abandonments: 6}}
	same := []FunnelFigures{{Name: "purchase", Entries: 10, Reached: []int64{10, 5, 2, 1}, Conversions: 1, Abandonments: 6}}
	if err := CompareFunnels("cxstream", a, "kstreams", same); err != nil {
		t.Fatalf("equal figures: %v", err)
	}
	off := []FunnelFigures{{Name: "purchase", Entries: 10, Reached: []int64{10, 5, 3, 1}, Conversions: 1, Abandonments: 5}}
	err := CompareFunnels("cxstream", a, "kstreams", off)
	if !errors.Is(err, ErrFunnelMismatch) {
		t.Fatalf("different figures: got %v, want ErrFunnelMismatch", err)
	}
	for _, want := range []string{"cxstream", "reached [10 5 2 1]", "abandonments 6", "kstreams", "reached [10 5 3 1]", "abandonments 5"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("mismatch message lacks %q:\n%s", want, err)
		}
	}
	if err := CompareFunnels("cxstream", a, "kstreams", nil); !errors.Is(err, ErrFunnelMismatch) || !strings.Contains(err.Error(), "kstreams does not") {
		t.Errorf("missing funnel: %v", err)
	}
}

func TestParseCPUs(t *testing.T) {
	c, err := ParseCPUs("0-1:2,3")
	if err != nil || c.SUT != "0-1" || c.Load != "2,3" {
		t.Fatalf("ParseCPUs(0-1:2,3) = %+v, %v", c, err)
	}
	for _, bad := range []string{"", "0", "0:", ":1", "a:b", "0;1"} {
		if _, err := ParseCPUs(bad); err == nil {
			t.Errorf("ParseCPUs(%q) accepted", bad)
		}
	}
	b := &bencher{cpus: CPUSets{SUT: "0-2,5"}}
	if n := b.sutCores(); n != 4 {
		t.Errorf("cores of 0-2,5 = %d, want 4", n)
	}
}

func TestWordListScorerFlagsListedWordsOnly(t *testing.T) {
	s := NewWordListScorer(NegativeWords())
	for text, want := range map[string]sentiment.Label{
		"Absolutely unacceptable, I want a REFUND now": sentiment.Negative,
		"你们的客服太差了,我要退款":                                sentiment.Negative,
		"Where can I find my invoice?":                 sentiment.Neutral,
		"Great course, I really enjoyed the exercises": sentiment.Neutral,
	} {
		if got := s.Score(text); got.Label != want {
			t.Errorf("Score(%q) = %v, want %v", text, got.Label, want)
		}
	}
	for _, w := range NegativeWords() {
		if w == "" || strings.HasPrefix(w, "#") || w != strings.ToLower(w) {
			t.Errorf("word list entry %q", w)
		}
	}
}

func TestPeerFunnelsRefuseWhatThePeerDoesNotDo(t *testing.T) {
	defs := comparisonFunnels(200_000)
	got, err := peerFunnels(defs)
	if err != nil || len(got) != 1 || got[0].WindowMs != (50*time.Second).Milliseconds() || len(got[0].Steps) != 4 || got[0].Steps[0].Events[0] != defs[0].Steps[0].Events[0] {
		t.Fatalf("peerFunnels(default) = %+v, %v", got, err)
	}
	defs[0].Order = funnel.Strict
	if _, err := peerFunnels(defs); err == nil {
		t.Error("a strict funnel was accepted")
	}
}

func TestProcReadsThisProcess(t *testing.T) {
	cpu, err := procCPUSeconds(os.Getpid())
	if err != nil || cpu < 0 {
		t.Fatalf("procCPUSeconds(self) = %v, %v", cpu, err)
	}
	if rss := procRSSMB(os.Getpid()); rss <= 0 {
		t.Errorf("procRSSMB(self) = %v", rss)
	}
}

func TestCommandStatsPerEvent(t *testing.T) {
	before := parseCommandStats("# Commandstats\r\ncmdstat_hmget:calls=10,usec=20,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\ncmdstat_info:calls=1,usec=50,usec_per_call=50.00\r\n")
	after := parseCommandStats("# Commandstats\r\ncmdstat_hmget:calls=210,usec=420,usec_per_call=2.00,rejected_calls=0,failed_calls=0\r\n" +
		"cmdstat_evalsha:calls=100,usec=900,usec_per_call=9.00\r\ncmdstat_info:calls=2,usec=100,usec_per_call=50.00\r\ncmdstat_ping:calls=7,usec=0\r\n")
	got := after.perEvent(before, 100)
	// Most time first; INFO (the bench's own) left out; PING made no time
	// but was called.
	want := "evalsha 1.00 calls 9.0 us, hmget 2.00 calls 4.0 us, ping 0.07 calls 0.0 us"
	if got != want {
		t.Fatalf("perEvent = %q, want %q", got, want)
	}
	if got := after.perEvent(after, 100); got != "none" {
		t.Fatalf("no change = %q, want none", got)
	}
}

func TestMachineBusyCountsThisProcessWork(t *testing.T) {
	b := &bencher{}
	from := b.cpuSplit()
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
	}
	got := b.cpuSplit().since(from)
	// Spinning keeps up to a core busy (less on a shared machine): the machine's
	// busy time counts it, and this process's share of it is most.
	if got.process < 0.2 || got.machine < got.process*0.9 {
		t.Errorf("after spinning 300 ms: %+v, want this process near one core and the machine at least that", got)
	}
}

func TestLatencyAtStandsAlone(t *testing.T) {
	o := Options{LatencyAt: 5000, Peer: PeerKStreams}
	if err := o.validate(); err == nil {
		t.Error("--latency-at with a peer was accepted")
	}
	o = Options{LatencyAt: -1}
	if err := o.validate(); err == nil {
		t.Error("a negative --latency-at was accepted")
	}
}
