package segment

import (
	"testing"

	json "github.com/goccy/go-json"

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

// BenchmarkStateCodec is the cost of writing and reading a user's segment
// state after a few changes, in the binary form the pipeline stores and
// in the JSON form it stored before.
func BenchmarkStateCodec(b *testing.B) {
	t := &testing.T{}
	d := newDriver(t, DefaultConfig())
	for i := range 5 {
		d.click("u", schemas.ClickPurchase, at(float64(i)), 20, nil)
	}
	st := d.user("u").State("segment").(*State)
	bin, err := st.AppendBinary(nil)
	if err != nil {
		b.Fatal(err)
	}
	js, err := json.Marshal(st)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("binary", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, len(bin))
		for b.Loop() {
			buf, _ = st.AppendBinary(buf[:0])
			var got State
			if err := got.UnmarshalBinary(buf); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(bin)), "bytes")
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			data, _ := json.Marshal(st)
			var got State
			if err := json.Unmarshal(data, &got); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(js)), "bytes")
	})
}

// BenchmarkReasonText is the text of one reason of a segment change, as
// built for every condition of the rule a user enters.
func BenchmarkReasonText(b *testing.B) {
	b.ReportAllocs()
	for i := range b.N {
		if reasonText("spend_30d", float64(i%1000)/7, ">=", 100.0) == "" {
			b.Fatal("empty")
		}
	}
}
