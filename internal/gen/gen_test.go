package gen

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
	"unicode"

	"github.com/cxstream/cxstream/schemas"
)

func chats(t *testing.T, locale string) map[string]int {
	t.Helper()
	g := New(Options{Users: 200, Seed: 5, Locale: locale})
	langs := map[string]int{}
	at := time.Unix(1_763_900_000, 0)
	for range 20000 {
		ev := g.Next(at)
		if ev.Kind != Chat {
			continue
		}
		var m schemas.ChatMessage
		if err := json.Unmarshal(ev.Value, &m); err != nil {
			t.Fatal(err)
		}
		han := false
		for _, r := range m.Text {
			han = han || unicode.Is(unicode.Han, r)
		}
		if han != (m.Language == "zh") {
			t.Fatalf("%q labelled %s", m.Text, m.Language)
		}
		langs[m.Language]++
	}
	return langs
}

func TestLocales(t *testing.T) {
	if l := chats(t, LocaleZh); l["zh"] == 0 || l["en"] != 0 {
		t.Errorf("zh: %v", l)
	}
	if l := chats(t, LocaleEn); l["en"] == 0 || l["zh"] != 0 {
		t.Errorf("en: %v", l)
	}
	for _, locale := range []string{"", LocaleMixed} {
		if l := chats(t, locale); l["en"] < 100 || l["zh"] < 100 {
			t.Errorf("%q: %v", locale, l)
		}
	}
	if err := ValidateLocale("fr"); !errors.Is(err, ErrLocale) {
		t.Errorf("fr: %v", err)
	}
}

// Properties are derived, not drawn: a seed yields the same events with
// or without them, and they are what a breakdown needs: utm_source on
// every click, fixed per session, and a topic on events about a course.
func TestPropertiesKeepTheEventsOfASeed(t *testing.T) {
	plain, props := New(Options{Users: 50, Seed: 9}), New(Options{Users: 50, Seed: 9, Properties: true})
	at := time.Unix(1_763_900_000, 0)
	sources, topics := map[string]int{}, map[string]int{}
	sessionSource := map[string]string{}
	for range 5000 {
		a, b := plain.Next(at), props.Next(at)
		if a.Kind != b.Kind || a.Key != b.Key {
			t.Fatalf("the events differ: %s vs %s", a.Value, b.Value)
		}
		if a.Kind != Click {
			continue
		}
		var ea, eb schemas.ClickEvent
		if err := json.Unmarshal(a.Value, &ea); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b.Value, &eb); err != nil {
			t.Fatal(err)
		}
		src, _ := eb.Properties["utm_source"].(string)
		topic, _ := eb.Properties["topic"].(string)
		delete(eb.Properties, "utm_source")
		delete(eb.Properties, "topic")
		if len(eb.Properties) == 0 {
			eb.Properties = nil
		}
		ra, _ := json.Marshal(ea)
		rb, _ := json.Marshal(eb)
		if string(ra) != string(rb) {
			t.Fatalf("besides the properties, %s differs from %s", rb, ra)
		}
		if src == "" {
			t.Fatalf("no utm_source: %s", b.Value)
		}
		if prev, ok := sessionSource[eb.SessionID]; ok && prev != src {
			t.Fatalf("session %s has utm_source %s and %s", eb.SessionID, prev, src)
		}
		sessionSource[eb.SessionID] = src
		sources[src]++
		if (eb.Page != "/") != (topic != "") {
			t.Fatalf("topic %q on page %q", topic, eb.Page)
		}
		if topic != "" {
			topics[topic]++
		}
	}
	if len(sources) != len(UTMSources) || len(topics) != len(CourseTopics) {
		t.Errorf("sources %v, topics %v: want every value", sources, topics)
	}
}

// The generator encodes its events with a faster encoder than
// encoding/json; what it writes must still be exactly what encoding/json
// writes for the same message, so a seed's bytes do not depend on it.
func TestEventsAreWhatEncodingJSONWrites(t *testing.T) {
	g := New(Options{Users: 300, Seed: 11, Properties: true, Locale: LocaleMixed})
	at := time.Unix(1_763_900_000, 0)
	var clicks, chats, purchases int
	for range 20000 {
		ev := g.Next(at)
		var want []byte
		switch ev.Kind {
		case Click:
			var c schemas.ClickEvent
			if err := json.Unmarshal(ev.Value, &c); err != nil {
				t.Fatal(err)
			}
			// encoding/json alone (ClickEvent.MarshalJSON is goccy's): the
			// same fields, and the amount a purchase always has.
			type plain schemas.ClickEvent
			if c.Type == schemas.ClickPurchase {
				purchases++
				want, _ = json.Marshal(struct {
					plain
					Amount float64 `json:"amount"`
				}{plain(c), c.Amount})
			} else {
				want, _ = json.Marshal(plain(c))
			}
			clicks++
		case Chat:
			var m schemas.ChatMessage
			if err := json.Unmarshal(ev.Value, &m); err != nil {
				t.Fatal(err)
			}
			want, _ = json.Marshal(m)
			chats++
		}
		if string(ev.Value) != string(want) {
			t.Fatalf("generated %s\nencoding/json writes %s", ev.Value, want)
		}
	}
	if clicks == 0 || chats == 0 || purchases == 0 {
		t.Fatalf("clicks %d, chats %d, purchases %d: want each", clicks, chats, purchases)
	}
}

// BenchmarkNext is the generator's cost per event, which the bench's load
// generation adds to the machine the system under test runs on.
func BenchmarkNext(b *testing.B) {
	g := New(Options{Users: 100_000, Seed: 1, ChatShare: 0.15})
	at := time.Unix(1_763_900_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		g.Next(at)
	}
}
