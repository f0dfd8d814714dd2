package schemas

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func addSeeds(f *testing.F) {
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
		for _, file := range files {
			raw, _ := os.ReadFile(file)
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"event_id":"e","user_id":"u","type":"page_view","event_time":1e400}`))
	f.Add([]byte("\xff\xfe"))
	f.Add([]byte(`{"properties":{"a":{"b":[1,2,{"c":null}]}}}`))
}

// The decoders never panic, reject only with an *InvalidError, and what they
// accept survives a round trip and validates again.
func FuzzDecodeClick(f *testing.F) {
	addSeeds(f)
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		ev, err := v.DecodeClick(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("rejection is not an InvalidError: %v", err)
			}
			return
		}
		again, _ := json.Marshal(ev)
		if _, err := v.DecodeClick(again); err != nil {
			t.Fatalf("accepted %q but not its re-encoding %q: %v", raw, again, err)
		}
		if ev.UserID == "" || ev.EventID == "" {
			t.Fatalf("accepted an event without ids: %q", raw)
		}
	})
}

func FuzzDecodeChat(f *testing.F) {
	addSeeds(f)
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := v.DecodeChat(raw)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("rejection is not an InvalidError: %v", err)
			}
			return
		}
		again, _ := json.Marshal(m)
		if _, err := v.DecodeChat(again); err != nil {
			t.Fatalf("accepted %q but not its re-encoding %q: %v", raw, again, err)
		}
	})
}

// EventTime reads any bytes without panicking, and where it reads a time
// on a message the decoders accept, it is theirs (where it cannot, the
// pipeline decodes the message in full).
func FuzzEventTime(f *testing.F) {
	f.Add([]byte(`{"event_id":"e1","user_id":"u","type":"page_view","event_time":1700000000000,"properties":{"event_time":"x"}}`))
	f.Add([]byte(`{"properties":{"event_time":5},"event_time":1700000000001,"event_id":"e","user_id":"u","type":"page_view"}`))
	f.Add([]byte(`{"event_id":"m","conversation_id":"c","user_id":"u","sender":"customer","text":"hi","event_time":1700000000002}`))
	f.Add([]byte(`{"a":"\"event_time\":1}`))
	f.Add([]byte(`{`))
	v := newValidator(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		at, ok := EventTime(raw)
		if ev, err := v.DecodeClick(raw); err == nil && ok && at != ev.EventTime {
			t.Fatalf("EventTime %d %v, click decoder %d", at, ok, ev.EventTime)
		}
		if m, err := v.DecodeChat(raw); err == nil && ok && at != m.EventTime {
			t.Fatalf("EventTime %d %v, chat decoder %d", at, ok, m.EventTime)
		}
	})
}
