package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// 1. About 100k mixed events in, via kcat: Redis state and the alert topic
// equal the batch reference.
func TestHappyPath(t *testing.T) {
	s := newStage(t, stageOptions{partitions: 6})
	in := makeInputs(100_000, 2000, 1)
	ref := computeReference(t, in)
	start := time.Now()
	s.start()
	s.produce(in)
	s.waitCaughtUp(3 * time.Minute)
	took := time.Since(start)
	s.checkState(ref)
	total, _ := s.checkAlerts(ref)
	t.Logf("happy path: %d events in %s (%.0f/s), %d users, %d negative-chat alerts expected, %d alert records",
		len(in), took.Round(time.Millisecond), float64(len(in))/took.Seconds(), len(ref.users), len(ref.alerts), total)
}

// 2. SIGKILL at random moments, at least 5 times, while 200k events stream
// in; restarted each time. Nothing lost, nothing counted twice, and every
// duplicate alert has its original's id.
func TestCrashLosesNothingAndCountsNothingTwice(t *testing.T) {
	s := newStage(t, stageOptions{partitions: 6})
	in := makeInputs(200_000, 3000, 2)
	ref := computeReference(t, in)
	rng := rand.New(rand.NewPCG(2, 3))
	p := s.start()
	produced := make(chan struct{})
	go func() { defer close(produced); s.produceStream(in, 40, 150*time.Millisecond) }()
	kills := 0
	for kills < 5 {
		time.Sleep(time.Duration(500+rng.IntN(1500)) * time.Millisecond)
		p.kill()
		kills++
		p = s.start()
	}
	<-produced
	s.waitCaughtUp(4 * time.Minute)
	s.checkState(ref)
	total, distinct := s.checkAlerts(ref)
	t.Logf("crash: %d events, %d SIGKILLs, %d alert records (%d distinct, %d duplicates from replays), %d negative-chat alerts expected",
		len(in), kills, total, distinct, total-distinct, len(ref.alerts))
}

// 3. Three instances in one group on 12 partitions; instances stop and
// start while events stream in.
func TestRebalanceLosesNothing(t *testing.T) {
	s := newStage(t, stageOptions{partitions: 12})
	in := makeInputs(150_000, 3000, 3)
	ref := computeReference(t, in)
	a, b, c := s.start(), s.start(), s.start()
	produced := make(chan struct{})
	go func() { defer close(produced); s.produceStream(in, 30, 200*time.Millisecond) }()
	time.Sleep(2 * time.Second)
	b.term(30 * time.Second) // b hands its partitions over on its way out
	time.Sleep(1500 * time.Millisecond)
	d := s.start()
	time.Sleep(1500 * time.Millisecond)
	a.kill() // its partitions move after the session timeout
	time.Sleep(2 * time.Second)
	e := s.start()
	<-produced
	s.waitCaughtUp(4 * time.Minute)
	s.checkState(ref)
	total, distinct := s.checkAlerts(ref)
	for _, p := range []*proc{c, d, e} {
		if !p.alive() {
			t.Errorf("an instance died; log:\n%s", p.logTail())
		}
	}
	t.Logf("rebalance: %d events over 12 partitions, 3 instances, 1 SIGTERM + 1 SIGKILL + 2 joins, %d alert records (%d distinct)", len(in), total, distinct)
}

// 4. Redis stops for 20 s mid-stream and comes back: the processor neither
// crashes nor spins, reports not ready, keeps its memory bounded, and
// resumes.
func TestRedisOutage(t *testing.T) {
	s := newStage(t, stageOptions{partitions: 6, persistentRedis: true})
	in := makeInputs(100_000, 2000, 4)
	ref := computeReference(t, in)
	p := s.start()
	s.produce(in[:30_000])
	time.Sleep(time.Second)
	s.redis.Stop()
	outageStart := time.Now()
	go s.produce(in[30_000:])
	sawNotReady := false
	var peakRSS int64
	for time.Since(outageStart) < 20*time.Second {
		if code, _ := p.get("/readyz"); code == 503 {
			sawNotReady = true
		}
		peakRSS = max(peakRSS, rssKB(p))
		time.Sleep(500 * time.Millisecond)
	}
	retries := p.metric("cx_batch_retries_total")
	s.redis.Start()
	s.waitCaughtUp(3 * time.Minute)
	if !p.alive() {
		t.Fatalf("the processor died during the outage; log:\n%s", p.logTail())
	}
	if !sawNotReady {
		t.Error("/readyz never reported not ready while Redis was down")
	}
	if code, body := p.get("/readyz"); code != 200 {
		t.Errorf("/readyz after recovery: %d %s", code, body)
	}
	// Backoff grows to 5 s per partition: 20 s of outage is a few dozen
	// retries, not a spin.
	if retries < 1 || retries > 200 {
		t.Errorf("%v batch retries during a 20 s outage", retries)
	}
	if peakRSS > 400_000 {
		t.Errorf("RSS grew to %d kB during the outage", peakRSS)
	}
	s.checkState(ref)
	s.checkAlerts(ref)
	t.Logf("redis outage: %d events, 20 s outage, %v batch retries, peak RSS %d MB, not-ready seen: %v", len(in), retries, peakRSS/1024, sawNotReady)
}

// 5. The Kafka broker restarts mid-stream; the processor reconnects and
// finishes.
func TestBrokerRestart(t *testing.T) {
	s := newStage(t, stageOptions{partitions: 6})
	in := makeInputs(100_000, 2000, 5)
	ref := computeReference(t, in)
	p := s.start()
	s.produce(in[:50_000])
	time.Sleep(800 * time.Millisecond)
	stopBroker()
	time.Sleep(3 * time.Second)
	addr, err := startBroker()
	if err != nil || addr != brokers {
		t.Fatalf("broker restart: %v (%s)", err, addr)
	}
	s.produce(in[50_000:])
	s.waitCaughtUp(3 * time.Minute)
	if !p.alive() {
		t.Fatalf("the processor died; log:\n%s", p.logTail())
	}
	s.checkState(ref)
	total, distinct := s.checkAlerts(ref)
	t.Logf("broker restart: %d events, %d alert records (%d distinct)", len(in), total, distinct)
}

// 7. SIGTERM mid-stream: exits within the bound having committed; the
// restart neither loses nor repeats work.
func TestGracefulShutdown(t *testing.T) {
	s := newStage(t, stageOptions{partitions: 6})
	in := makeInputs(120_000, 2000, 7)
	ref := computeReference(t, in)
	p := s.start()
	produced := make(chan struct{})
	go func() { defer close(produced); s.produceStream(in, 20, 100*time.Millisecond) }()
	time.Sleep(1500 * time.Millisecond)
	took := p.term(20 * time.Second)
	if p.err != nil {
		t.Errorf("exit after SIGTERM: %v; log:\n%s", p.err, p.logTail())
	}
	if took > 15*time.Second {
		t.Errorf("shutdown took %s, bound is 10s + 5s to leave the group", took)
	}
	<-produced
	q := s.start()
	s.waitCaughtUp(3 * time.Minute)
	if skipped := q.metric("cx_events_replay_skipped_total"); skipped != 0 {
		t.Errorf("the restart re-read %v events that were already applied: the shutdown did not commit what it had done", skipped)
	}
	s.checkState(ref)
	s.checkAlerts(ref)
	t.Logf("graceful shutdown: exited %s after SIGTERM, %d events, nothing replayed", took.Round(time.Millisecond), len(in))
}

func rssKB(p *proc) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return 0
}

// 6. Poison input interleaved with good events: every bad record is in the
// dead-letter topic, byte for byte, with its reason; every good one is
// processed; the processor never restarts; chat text never reaches the log.
func TestPoisonInput(t *testing.T) {
	s := newStage(t, stageOptions{partitions: 3, extraProcessing: "  max_dead_letter_bytes: 8388608\n"})
	now := time.Now().UnixMilli()
	const marker = "MARKER-7f3a91"
	good := makeInputs(20_000, 500, 6)
	for i := range 50 {
		c := &chatIn{EventID: fmt.Sprintf("mk-%d", i), ConversationID: "mk", UserID: "u-marker", Sender: "customer", Text: marker + " this is terrible, I want a refund", EventTime: now - 1000 + int64(i)}
		v, _ := json.Marshal(c)
		good = append(good, input{kind: "chat", key: "u-marker", value: v, chat: c})
	}
	big := `{"event_id":"p-big","user_id":"u1","type":"page_view","page":"` + strings.Repeat("x", 5<<20) + `","event_time":` + strconv.FormatInt(now, 10) + `}`
	poison := []struct {
		kind, value, reason string
	}{
		{"clickstream", `{"event_id":"p-1","user_id":"u1","type":"page_vi`, "invalid_json"},
		{"clickstream", `not json at all`, "invalid_json"},
		{"clickstream", `[]`, "schema_violation"},
		{"clickstream", `{"event_id":"p-2","user_id":"u1","type":"tele\u0007port","event_time":` + strconv.FormatInt(now, 10) + `}`, "schema_violation"},
		{"clickstream", `{"event_id":"p-3","user_id":"u1","type":"page_view","event_time":"yesterday"}`, "schema_violation"},
		{"clickstream", `{"event_id":"p-4","type":"page_view","event_time":` + strconv.FormatInt(now, 10) + `}`, "schema_violation"},
		{"clickstream", `{"event_id":"p-5","user_id":"u1","type":"purchase","amount":"lots","currency":"EUR","event_time":` + strconv.FormatInt(now, 10) + `}`, "schema_violation"},
		{"clickstream", `{"event_id":"p-6","user_id":"u1","type":"page_view","event_time":` + strconv.FormatInt(now+10*24*3600*1000, 10) + `}`, "future_timestamp"},
		{"clickstream", big, "too_large"},
		{"chat", `{"event_id":"p-7","conversation_id":"c","user_id":"u1","sender":"robot","text":"` + marker + `","event_time":` + strconv.FormatInt(now, 10) + `}`, "schema_violation"},
		{"chat", "{\"event_id\":\"p-8\",\"conversation_id\":\"c\",\"user_id\":\"u1\",\"sender\":\"customer\",\"text\":\"" + marker + " caf\xe9\",\"event_time\":" + strconv.FormatInt(now, 10) + "}", "invalid_utf8"},
		{"chat", `{"event_id":"p-9","conversation_id":"c","user_id":"u1","sender":"customer","text":"` + marker + ` broken`, "invalid_json"},
		{"chat", `{"event_id":"p-10","conversation_id":"c","user_id":"","sender":"customer","text":"hi","event_time":` + strconv.FormatInt(now, 10) + `}`, "schema_violation"},
	}
	ref := computeReference(t, good)
	var in []input
	step := len(good) / len(poison)
	for i, g := range good {
		in = append(in, g)
		if i%step == step/2 && i/step < len(poison) {
			p := poison[i/step]
			in = append(in, input{kind: p.kind, key: "u-poison", value: []byte(p.value)})
		}
	}
	p := s.start()
	s.produce(in)
	s.waitCaughtUp(3 * time.Minute)
	if !p.alive() {
		t.Fatalf("the processor died; log:\n%s", p.logTail())
	}
	dead := s.readDeadLetters(len(poison))
	byValue := map[string]*kgo.Record{}
	for _, r := range dead {
		byValue[string(r.Value)] = r
	}
	for _, want := range poison {
		r := byValue[want.value]
		if r == nil {
			t.Errorf("not in the dead-letter topic (byte-exact): %.80q", want.value)
			continue
		}
		hdr := map[string]string{}
		for _, h := range r.Headers {
			hdr[h.Key] = string(h.Value)
		}
		if hdr["cx-reason"] != want.reason || hdr["cx-source-topic"] != s.topics[want.kind] || hdr["cx-source-offset"] == "" || hdr["cx-source-partition"] == "" {
			t.Errorf("%.60q: headers %v, want reason %s", want.value, hdr, want.reason)
		}
		if strings.Contains(hdr["cx-detail"], marker) {
			t.Errorf("a dead-letter reason quotes chat text: %q", hdr["cx-detail"])
		}
	}
	if len(dead) != len(poison) {
		t.Errorf("%d dead letters for %d bad records", len(dead), len(poison))
	}
	s.checkState(ref)
	s.checkAlerts(ref)
	if got := p.metric("cx_deadletter_total"); got != float64(len(poison)) {
		t.Errorf("cx_deadletter_total = %v, want %d", got, len(poison))
	}
	logText, _ := os.ReadFile(p.logPath)
	if strings.Contains(string(logText), marker) {
		t.Errorf("chat text reached the log")
	}
	t.Logf("poison: %d bad records (largest 5 MiB) among %d good: all dead-lettered byte-exact with their reason; good ones match the reference; one process throughout", len(poison), len(good))
}

// Static membership: an instance killed with SIGKILL and restarted with
// the same kafka.instance_id takes its partitions back at once, not after
// the session timeout (45 s here, the default). Measures kill -> the
// restarted process applying events again.
func TestStaticMemberResumesAtOnceAfterKill(t *testing.T) {
	s := newStage(t, stageOptions{partitions: 4, sessionTimeout: "45s"})
	in := makeInputs(20_000, 500, 8)
	ref := computeReference(t, in)
	first, second := in[:10_000], in[10_000:]
	p := s.startAs("cx-0")
	s.produce(first)
	s.waitCaughtUp(2 * time.Minute)
	p.kill()
	killed := time.Now()
	s.produce(second)
	p = s.startAs("cx-0")
	deadline := time.Now().Add(60 * time.Second)
	for p.metric("cx_events_applied_total") == 0 {
		if time.Now().After(deadline) || !p.alive() {
			t.Fatalf("the restarted instance applied nothing within 60 s of the kill; log:\n%s", p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resumed := time.Since(killed)
	s.waitCaughtUp(2 * time.Minute)
	s.checkState(ref)
	s.checkAlerts(ref)
	t.Logf("static membership: kill -9 -> processing resumed on restart in %s (session timeout 45s)", resumed.Round(time.Millisecond))
	// The property, not a speed target: a dynamic member would wait for
	// the 45 s session timeout.
	if resumed > 30*time.Second {
		t.Errorf("resumed after %s: the restarted static member waited for the session timeout", resumed)
	}
}
