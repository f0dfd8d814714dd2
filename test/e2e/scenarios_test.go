package e2e

import (
	"math/rand/v2"
	"testing"
	"time"
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
