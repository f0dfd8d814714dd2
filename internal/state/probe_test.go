package state

import (
	"context"
	"sync"
	"testing"

	"github.com/cxstream/cxstream/internal/testenv"
)

// Instances that start together each run the probe at the same moment:
// none may erase another's probe document, and none is left behind.
func TestProbesOfInstancesStartingTogetherDoNotCollide(t *testing.T) {
	r := testenv.StartRedis(t)
	s := New(r.Client, Options{})
	ctx := context.Background()
	testenv.Must(t, s.Prepare(ctx), "prepare")
	for round := range 20 {
		var wg sync.WaitGroup
		errs := make(chan error, 6)
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.Probe(ctx)
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	if keys := r.Client.Keys(ctx, "*").Val(); len(keys) != 0 {
		t.Fatalf("probes left %d keys behind: %q", len(keys), keys)
	}
}
