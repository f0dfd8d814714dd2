package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
)

// probePrefix starts the user `cxstream check` (and every `run` at start)
// writes and erases to prove the rights cxstream needs; no real id can
// clash with it (ids are printable). Each probe adds a random suffix:
// instances starting together must not erase each other's probe.
const probePrefix = "\x01cxstream-check-"

// Probe runs the store's own operations on a probe user: a CAS write with
// a timer, a read, the timer queries and an erasure. An ACL that lacks a
// command cxstream uses fails here, at start, instead of mid-stream.
func (s *Store) Probe(ctx context.Context) error {
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return fmt.Errorf("probe id: %w", err)
	}
	probeUser := probePrefix + hex.EncodeToString(suffix[:])
	index := s.TimerIndex(probeUser, 0)
	if err := s.SaveWithTimers(ctx, []Timer{{Index: index, User: probeUser, Due: 1}}, []Write{{User: probeUser, Side: Click, Data: []byte(`{}`)}}); err != nil {
		return fmt.Errorf("probe write: %w", err)
	}
	docs, err := s.Load(ctx, []string{probeUser})
	if err != nil {
		return fmt.Errorf("probe read: %w", err)
	}
	if docs[probeUser].Click.Version == 0 {
		return fmt.Errorf("probe read: the document just written is not there")
	}
	if _, err := s.Due(ctx, index, 2, 1); err != nil {
		return fmt.Errorf("probe timers: %w", err)
	}
	if _, err := s.Pending(ctx, index); err != nil {
		return fmt.Errorf("probe timers: %w", err)
	}
	if _, err := s.Forget(ctx, probeUser); err != nil {
		return fmt.Errorf("probe erasure: %w", err)
	}
	// Watermarks: read and raised with a script (GET, EVALSHA/EVAL, SET).
	if _, _, err := s.Watermark(ctx, probeUser, 0); err != nil {
		return fmt.Errorf("probe watermark: %w", err)
	}
	if err := s.RaiseWatermark(ctx, probeUser, 0, 1); err != nil {
		return fmt.Errorf("probe watermark: %w", err)
	}
	if err := s.rdb.Del(ctx, s.WatermarkKey(probeUser, 0)).Err(); err != nil {
		return fmt.Errorf("probe watermark: %w", err)
	}
	return nil
}
