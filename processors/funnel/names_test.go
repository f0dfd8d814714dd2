package funnel

import (
	"fmt"
	"testing"
	"time"
)

// Steps and exclusions refer to the source's own event names; names no
// step mentions do not disturb an ordered funnel.
func TestStepsMatchOwnNames(t *testing.T) {
	p := mustNew(t, []Definition{{Name: "shop", Window: time.Hour,
		Steps:      []Step{{Name: "viewed", Events: []string{"Product Viewed"}}, {Name: "ordered", Events: []string{"Order Completed"}}},
		Exclusions: []Step{{Name: "removed", Events: []string{"Product Removed"}}},
	}}, 0)
	st := State{}
	var got []string
	for i, name := range []string{"Product Viewed", "Wishlist Shared", "Order Completed", "Product Viewed", "Product Removed", "Order Completed"} {
		got = append(got, kinds(p.Apply(st, click(name, t0+int64(i)*1000)))...)
	}
	want := "[entered:viewed converted:ordered entered:viewed abandoned:viewed]"
	if fmt.Sprint(got) != want {
		t.Fatalf("got %v, want %s", got, want)
	}
	if p.Stage(st) != "" {
		t.Fatalf("stage after the exclusion: %q", p.Stage(st))
	}
}
