package segment

import (
	"reflect"
	"testing"

	"github.com/cxstream/cxstream/schemas"
)

// A foreseen change's reasons keep their thresholds and values through
// the binary form as through the JSON one: numbers, text, flags and
// nothing as they are, anything else as JSON reads it back.
func TestStateCodecKeepsReasonValues(t *testing.T) {
	st := State{Segment: "engaged", Since: 1, At: 2, Due: 3, Next: &Foreseen{At: 4, To: "dormant", Reasons: []schemas.SegmentReason{
		{Feature: "days_since_last_click", Op: ">=", Threshold: 14.0, Value: 13.5, Text: "no click for 14 days"},
		{Feature: "plan", Op: "==", Threshold: "pro", Value: "pro", Text: "on plan pro"},
		{Feature: "flag", Op: "==", Threshold: true, Value: nil, Text: "flagged"},
		{Feature: "list", Op: "in", Threshold: []any{"a", 2.0}, Value: map[string]any{"k": "v"}, Text: "listed"},
	}}, Props: map[string]Prop{"plan": {V: "pro", T: 5}}, Recent: []Change{{From: "", To: "new", At: 1}, {From: "new", To: "engaged", At: 2}}}
	data, err := st.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var got State
	if err := got.UnmarshalBinary(data); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Fatalf("state changed by its binary form:\n got %+v\nwant %+v", got, st)
	}
	for cut := range len(data) {
		var short State
		if short.UnmarshalBinary(data[:cut]) == nil {
			t.Fatalf("%d of %d bytes read without an error", cut, len(data))
		}
	}
}
