package churn

import "testing"

func BenchmarkObserveAndEvaluate(b *testing.B) {
	p, _ := New(DefaultConfig())
	st := &State{}
	sig := Signals{NegativeAt: []int64{t0}, ContactAt: []int64{t0}}
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		e := ev("page_view", t0+i*60_000, 0)
		Observe(st, e)
		p.Evaluate(st, "u", sig, e.EventTime, "e")
		i++
	}
}
