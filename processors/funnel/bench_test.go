package funnel

import (
	"testing"
	"time"
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
