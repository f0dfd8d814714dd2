package schemas

import (
	"reflect"
	"testing"
)

// The fast path never accepts what the schema rejects, and decodes what it
// accepts exactly as the schema path does.
func FuzzFastPathAgreesWithSchema(f *testing.F) {
	addSeeds(f)
	for _, s := range []string{
		`{"USER_ID":"u","event_id":"e","type":"page_view","event_time":1763900000000}`,
		`{"user_id":"u","event_id":"e","type":"page_view","event_time":1763900000000,"user_id":null}`,
		`{"user_id":"u","event_id":"e","type":"purchase","event_time":1763900000000,"amount":0,"currency":"EUR"}`,
		`{"user_id":"u","event_id":"e","type":"page_view","event_time":1763900000000,"currency":""}`,
		`{"user_id":"u","event_id":"e","type":"page_view","event_time":1.7639e12}`,
		`{"event_id":"m","conversation_id":"c","user_id":"u","sender":"customer","text":"hi","language":"zh-Hant-TW","event_time":1763900000000}`,
		`{"schema":"clickstream.v2","user_id":"u","event_id":"e","type":"Order Completed","event_time":1763900000000}`,
		`{"user_id":"u","event_id":"e","type":"a\u007fb","event_time":1763900000000}`,
		`{"user_id":"u","event_id":"e","type":"\u00a0","event_time":1763900000000}`,
	} {
		f.Add([]byte(s))
	}
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		var fc ClickEvent
		if len(raw) <= v.maxBytes && fastClick(raw, &fc) {
			var full ClickEvent
			if err := v.decode(ClickstreamV2, raw, &full); err != nil {
				t.Fatalf("fast path accepted a click the schema rejects: %q: %v", raw, err)
			}
			if !reflect.DeepEqual(fc, full) {
				t.Fatalf("fast and schema paths decode %q differently:\n%+v\n%+v", raw, fc, full)
			}
		}
		// Reading v1 goes on: whatever clickstream.v1 accepts, the reader
		// (v2) accepts and decodes the same way.
		if v.Validate(ClickstreamV1, raw) == nil {
			var v1 ClickEvent
			_ = v.decode(ClickstreamV1, raw, &v1)
			v2, err := v.DecodeClick(raw)
			if err != nil {
				t.Fatalf("a valid clickstream.v1 message is rejected: %q: %v", raw, err)
			}
			if !reflect.DeepEqual(v1, v2) {
				t.Fatalf("v1 and v2 decode %q differently:\n%+v\n%+v", raw, v1, v2)
			}
		}
		var fm ChatMessage
		if len(raw) <= v.maxBytes && fastChat(raw, &fm) {
			var full ChatMessage
			if err := v.decode(ChatV1, raw, &full); err != nil {
				t.Fatalf("fast path accepted a chat message the schema rejects: %q: %v", raw, err)
			}
			if !reflect.DeepEqual(fm, full) {
				t.Fatalf("fast and schema paths decode %q differently:\n%+v\n%+v", raw, fm, full)
			}
		}
	})
}

func TestFastPathTakesTheUsualMessages(t *testing.T) {
	for _, raw := range []string{
		`{"schema":"clickstream.v1","event_id":"c-1","user_id":"u-42","session_id":"s-9","type":"purchase","item_id":"course-17","amount":49.9,"currency":"EUR","properties":{"category":"course","n":2,"ok":true},"event_time":1763900300000}`,
	} {
		var ev ClickEvent
		if !fastClick([]byte(raw), &ev) || ev.Amount != 49.9 || ev.Properties["n"] != 2.0 {
			t.Errorf("fast path declined or misread %s: %+v", raw, ev)
		}
	}
	var m ChatMessage
	if !fastChat([]byte(`{"event_id":"m","conversation_id":"c","user_id":"u","sender":"customer","channel":"web","text":"I want a refund","language":"en","event_time":1763900000000}`), &m) || m.Text != "I want a refund" {
		t.Errorf("fast path declined a usual chat message: %+v", m)
	}
	for _, raw := range []string{
		`{"USER_ID":"u","event_id":"e","type":"page_view","event_time":1763900000000}`,
		`{"user_id":null,"event_id":"e","type":"page_view","event_time":1763900000000}`,
		`{"user_id":"u","event_id":"e","type":"page_view","event_time":1763900000000,"currency":""}`,
		`{"user_id":"u","event_id":"e","type":"purchase","event_time":1763900000000,"amount":5}`,
	} {
		var ev ClickEvent
		if fastClick([]byte(raw), &ev) {
			t.Errorf("fast path accepted %s", raw)
		}
	}
}
