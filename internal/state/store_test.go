package state

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cxstream/cxstream/internal/testenv"
)

// Many writers start at once on a Redis that has never seen the script:
// each must write exactly its own documents, with no false conflict from
// retrying writes that already ran.
func TestConcurrentFirstSavesOnAFreshRedis(t *testing.T) {
	r := testenv.StartRedis(t)
	s := New(r.Client, Options{})
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var writes []Write
			for i := range 300 {
				writes = append(writes, Write{User: fmt.Sprintf("w%d-u%d", w, i), Side: Click, Data: []byte("{}")})
			}
			errs <- s.Save(ctx, writes)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	docs, err := s.Load(ctx, []string{"w0-u0", "w7-u299"})
	testenv.Must(t, err, "load")
	if docs["w0-u0"].Click.Version != 1 || docs["w7-u299"].Click.Version != 1 {
		t.Fatalf("versions %+v", docs)
	}
}

func TestStaleWriteIsAConflict(t *testing.T) {
	r := testenv.StartRedis(t)
	s := New(r.Client, Options{})
	ctx := context.Background()
	testenv.Must(t, s.Save(ctx, []Write{{User: "u", Side: Chat, Data: []byte("1")}}), "first")
	err := s.Save(ctx, []Write{{User: "u", Side: Chat, Expect: 0, Data: []byte("2")}, {User: "v", Side: Chat, Data: []byte("3")}})
	var ce *ConflictError
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || len(ce.Keys) != 1 {
		t.Fatalf("got %v", err)
	}
	docs, _ := s.Load(ctx, []string{"u", "v"})
	if string(docs["u"].Chat.Data) != "1" || string(docs["v"].Chat.Data) != "3" {
		t.Fatalf("the stale write landed or the good one did not: %+v", docs)
	}
}
