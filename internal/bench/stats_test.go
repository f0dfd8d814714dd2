package bench

import (
	"errors"
	"math"
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

func TestBusySecondsCountsWhatRanAndNotTheRest(t *testing.T) {
	// user nice system idle iowait irq softirq steal guest guest_nice
	line := "cpu  1000 20 300 50000 700 10 40 900 600 5"
	if got, want := busySeconds(line), float64(1000+20+300+10+40)/clockTicks; got != want {
		t.Errorf("busySeconds = %v, want %v (idle, iowait, steal and guest are not busy)", got, want)
	}
	if got := busySeconds("cpu0 1 2 3 4 5"); got != 0 {
		t.Errorf("a per-core line read as the machine's: %v", got)
	}
	if got, want := stealSeconds(line), float64(900)/clockTicks; got != want {
		t.Errorf("stealSeconds = %v, want %v", got, want)
	}
	if got := stealSeconds("cpu0 1 2 3 4 5 6 7 8"); got != 0 {
		t.Errorf("a per-core line read as the machine's steal: %v", got)
	}
	if busy, steal := machineSeconds(); busy <= 0 || steal < 0 || machineCPUs() < 1 {
		t.Errorf("this machine: busy %v s, steal %v s over %d CPUs", busy, steal, machineCPUs())
	}
}

func TestLatencyAtStandsAlone(t *testing.T) {
	for _, o := range []Options{{LatencyAt: 5000, Peer: PeerKStreams}, {LatencyAt: -1}, {LatencyAt: math.NaN()}, {LatencyAt: math.Inf(1)}} {
		if err := o.validate(); err == nil {
			t.Errorf("latency-at %v with peer %q was accepted", o.LatencyAt, o.Peer)
		}
	}
	if err := (&Options{LatencyAt: 5000}).validate(); err != nil {
		t.Errorf("latency-at 5000 refused: %v", err)
	}
}

func TestPrintOfALatencyRunNamesItsRateAndNoThroughput(t *testing.T) {
	var out strings.Builder
	Print(&out, &Result{Runs: 3, LatencyAtPerS: 12000, Machine: "2 CPUs", Latency: []LatencyRow{
		{OfferedPerS: Summarize([]float64{12000, 12000, 12000}), P99Ms: Summarize([]float64{55, 62, 70})}}})
	got := out.String()
	for _, want := range []string{"latency alone at 12000 events/s", "latency p50 at 12000", "62.0 (55.0-70.0)"} {
		if !strings.Contains(got, want) {
			t.Errorf("the table lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "ceiling") || strings.Contains(got, "end to end") {
		t.Errorf("a latency run printed throughput rows it did not measure:\n%s", got)
	}
}
