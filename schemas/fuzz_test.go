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
