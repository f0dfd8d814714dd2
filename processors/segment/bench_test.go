package segment

import (
	"testing"

	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/schemas"
)

// BenchmarkApply is the segment processor's cost per click of a
// high-value customer (the default rules), after funnel and churn took
// the click, as the pipeline runs it.
func BenchmarkApply(b *testing.B) {
	t := &testing.T{}
	d := newDriver(t, DefaultConfig())
	for i := range 5 {
		d.click("u", schemas.ClickPurchase, at(float64(i)), 20, nil)
	}
	u := d.user("u")
	seg := d.procs[2]
	ev := schemas.ClickEvent{EventID: "x", UserID: "u", Type: schemas.ClickPageView}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ev.EventTime = at(5) + int64(i)
		eff := seg.Apply(u, processors.Event{Click: &ev})
		if len(eff.Records) != 0 {
			b.Fatal("a page view changed the segment")
		}
	}
}
