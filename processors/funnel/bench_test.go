package funnel

import (
	"fmt"
	"testing"
	"time"

	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/schemas"
)

func BenchmarkApply(b *testing.B) {
	p, _ := New(DefaultDefinitions(), 5*time.Minute)
	types := []string{"page_view", "product_view", "add_to_cart", "checkout_start", "purchase", "search"}
	st := State{}
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		ev := click(types[i%int64(len(types))], t0+i*1000)
		ev.EventID = "e"
		p.Apply(st, ev)
		i++
	}
}

// BenchmarkKeyedApply measures what breakdowns cost per click on the
// processor contract: none, and by segment (read from the Facts on step
// events) and a property.
func BenchmarkKeyedApply(b *testing.B) {
	for _, bd := range [][]string{nil, {BySegment, "property.utm_source"}} {
		b.Run(fmt.Sprintf("breakdowns=%d", len(bd)), func(b *testing.B) {
			defs := DefaultDefinitions()
			defs[0].Breakdowns = bd
			p, _ := New(defs, 5*time.Minute)
			asked := 0
			procs := []processors.Processor{segmenter{&asked}, NewKeyed(p, schemas.Vocabulary{})}
			u := processors.NewUser("u", procs, nil)
			types := []string{"page_view", "product_view", "add_to_cart", "checkout_start", "purchase", "search"}
			b.ReportAllocs()
			i := int64(0)
			for b.Loop() {
				ev := click(types[i%int64(len(types))], t0+i*1000)
				ev.EventID = fmt.Sprint(i % 64)
				ev.Properties = map[string]any{"utm_source": "google"}
				procs[1].Apply(u, processors.Event{Click: &ev})
				i++
			}
		})
	}
}
