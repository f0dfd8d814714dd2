package collect

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/testenv"
)

// With pseudonymisation on, ids appear in no key name; forget by the
// original id still finds and erases the links.
func TestLinksArePseudonymous(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	links := NewLinks(r.Client, "cx", time.Hour, privacy.NewPseudonymizer("k-1"))
	testenv.Must(t, links.Link(ctx, map[string]string{"anon-1": "user-1", "anon-2": "user-1"}), "link")
	keys := r.Client.Keys(ctx, "*").Val()
	if len(keys) != 3 {
		t.Fatalf("keys %v, want two links and the reverse set", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "anon-") || strings.Contains(k, "user-") {
			t.Errorf("an id in a key name: %s", k)
		}
	}
	got, err := links.Resolve(ctx, []string{"anon-1", "anon-2", "anon-3"})
	testenv.Must(t, err, "resolve")
	if len(got) != 2 || got["anon-1"] != "user-1" || got["anon-2"] != "user-1" {
		t.Fatalf("resolved %v", got)
	}
	n, anons, err := links.Forget(ctx, "user-1")
	testenv.Must(t, err, "forget")
	if len(anons) != 2 {
		t.Fatalf("forget returned %v, want the two linked anonymous ids (stored form)", anons)
	}
	for _, a := range anons {
		if strings.Contains(a, "anon-") {
			t.Errorf("an original anonymous id in the reverse set: %s", a)
		}
	}
	if n != 3 || len(r.Client.Keys(ctx, "*").Val()) != 0 {
		t.Fatalf("forget deleted %d, left %v", n, r.Client.Keys(ctx, "*").Val())
	}
}
