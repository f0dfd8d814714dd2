package ingest

import (
	"errors"
	"reflect"
	"testing"

	"github.com/cxstream/cxstream/schemas"
)

// The Segment and mapping readers never panic, reject only with an
// *schemas.InvalidError, accept only events with ids, and read the same
// bytes the same way (a hashed event id must be stable).
func FuzzReaders(f *testing.F) {
	for _, s := range []string{
		`{"type":"track","event":"Order Completed","messageId":"m","userId":"u","timestamp":"2024-03-01T10:00:00Z","properties":{"revenue":"3.5","currency":"usd"}}`,
		`{"type":"page","anonymousId":7,"originalTimestamp":"2024-03-01 10:00:00","properties":{"path":null}}`,
		`{"type":"identify","userId":"","anonymousId":" ","timestamp":1709287200}`,
		`{"u":"x","t":"Visited","ts":1709287200,"p":{"q":[1,{"r":null}]},"amt":"1e400"}`,
		`{"u":{"id":1},"t":"a\u0000b","ts":"2019-10-01 00:00:00 UTC","amt":-1}`,
		`[]`, `null`, `{"type":"track"`, "\xff",
	} {
		f.Add([]byte(s))
	}
	v, err := schemas.NewValidator(0)
	if err != nil {
		f.Fatal(err)
	}
	seg, _ := NewDecoder(Click, Input{Format: FormatSegment, DefaultCurrency: "EUR"}, v)
	mapped, _ := NewDecoder(Click, Input{Format: FormatMapping, Mapping: &Mapping{
		Fields:     map[string]string{"user_id": "u", "type": "t", "event_time": "ts", "amount": "amt", "properties.q": "p.q.0", "session_id": "p.q.1.r"},
		Values:     map[string]map[string]string{"type": {"Visited": "page_view"}},
		TimeFormat: "", DefaultCurrency: "USD",
	}}, v)
	f.Fuzz(func(t *testing.T, raw []byte) {
		for _, d := range []*Decoder{seg, mapped} {
			ev, err := d.Click(raw)
			if err != nil {
				var ie *schemas.InvalidError
				if !errors.As(err, &ie) {
					t.Fatalf("%s: rejection is not an InvalidError: %v", d.Format(), err)
				}
				continue
			}
			if ev.UserID == "" || ev.EventID == "" || ev.Type == "" {
				t.Fatalf("%s: accepted an event without ids or name: %q -> %+v", d.Format(), raw, ev)
			}
			again, err := d.Click(raw)
			if err != nil || !reflect.DeepEqual(ev, again) {
				t.Fatalf("%s: the same bytes read differently: %+v / %+v %v", d.Format(), ev, again, err)
			}
		}
	})
}
