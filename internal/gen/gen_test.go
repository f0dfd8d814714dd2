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
