package kafka

import (
	"sync"
	"time"

	"go.uber.org/zap"
)

// failureLog turns per-partition batch retries into a few lines an
// operator can read: one when batches start failing, a summary at most
// every `every` while they keep failing, and one when every partition
// succeeds again. Each retry is still logged at debug level.
type failureLog struct {
	log   *zap.Logger
	every time.Duration

	mu         sync.Mutex
	partitions int // partitions currently retrying a batch
	since      time.Time
	retries    int
	lastLine   time.Time
}

func (f *failureLog) failing(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partitions++
	f.retries++
	if f.partitions == 1 {
		f.since, f.retries, f.lastLine = time.Now(), 1, time.Now()
		f.log.Warn("batches failing; retrying with backoff until they succeed", zap.Error(err))
		return
	}
	f.summary(err)
}

func (f *failureLog) retry(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retries++
	f.summary(err)
}

// summary logs at most once per f.every; f.mu is held.
func (f *failureLog) summary(err error) {
	if time.Since(f.lastLine) < f.every {
		return
	}
	f.lastLine = time.Now()
	f.log.Warn("batches still failing", zap.Int("partitions", f.partitions), zap.Int("retries", f.retries),
		zap.Duration("for", time.Since(f.since).Round(time.Second)), zap.Error(err))
}

// done ends one partition's failing batch: ok when it finally succeeded,
// not when the partition was revoked or the process stops.
func (f *failureLog) done(ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.partitions--
	if f.partitions == 0 && ok {
		f.log.Info("batches succeed again", zap.Int("retries", f.retries), zap.Duration("failed_for", time.Since(f.since).Round(time.Millisecond)))
	}
}
