package schemas

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// What the segment processor builds is valid segments.v1, with a
// deterministic id; a broken one is rejected naming the field.
func TestSegmentChangeValidates(t *testing.T) {
	v := newValidator(t)
	c := SegmentChange{Schema: SegmentsV1, ChangeID: SegmentChangeID("u-1", 1763900000000, "churned"), UserID: "u-1", From: "high_value", To: "churned",
		Reasons:   []SegmentReason{{Feature: "days_since_last_event", Op: ">=", Threshold: 30.0, Value: 30.5, Text: "days_since_last_event 30.5 >= 30"}},
		EventTime: 1763900000000, Trigger: SegmentTriggerTime}
	raw, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Validate(SegmentsV1, raw); err != nil {
		t.Fatalf("built change is not valid segments.v1: %v\n%s", err, raw)
	}
	if c.ChangeID != SegmentChangeID("u-1", 1763900000000, "churned") || c.ChangeID == SegmentChangeID("u-1", 1763900000001, "churned") ||
		c.ChangeID == SegmentChangeID("u-1", 1763900000000, "regular") || c.ChangeID == SegmentChangeID("u-2", 1763900000000, "churned") {
		t.Error("change ids are not a function of user, event time and segment")
	}
	first := c
	first.From, first.Reasons = "", []SegmentReason{}
	raw, _ = json.Marshal(first)
	if err := v.Validate(SegmentsV1, raw); err != nil {
		t.Errorf("a first segment (from empty, no reasons) is rejected: %v", err)
	}
	for name, edit := range map[string][2]string{
		"unknown trigger": {`"trigger":"time"`, `"trigger":"clock"`},
		"bad op":          {`"op":"\u003e="`, `"op":"~"`},
		"time as string":  {`"event_time":1763900000000`, `"event_time":"1763900000000"`},
	} {
		raw, _ := json.Marshal(c)
		bad := strings.Replace(string(raw), edit[0], edit[1], 1)
		err := v.Validate(SegmentsV1, []byte(bad))
		var ie *InvalidError
		if !errors.As(err, &ie) || ie.Schema != SegmentsV1 {
			t.Errorf("%s: accepted or wrong error (%v)", name, err)
		}
	}
}
