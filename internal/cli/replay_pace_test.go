package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

// --speed spaces records by their event times: 20 s of history at speed
// 50 cannot go out in less than 400 ms, and keeps its order. --rate caps
// records a second the same way. (Lower bounds only: a slow machine may
// take longer, never less.)
func TestReplayPacesByEventTimeAndRate(t *testing.T) {
	k := testenv.StartKafka(t, 1, "cx.clickstream.v1", "cx.chat.v1")
	var lines []string
	base := time.Now().Add(-time.Hour).UnixMilli()
	for i := range 11 {
		b, _ := json.Marshal(schemas.ClickEvent{EventID: "e" + string(rune('a'+i)), UserID: "u", Type: schemas.ClickPageView, EventTime: base + int64(i)*2000})
		lines = append(lines, string(b))
	}
	path := filepath.Join(t.TempDir(), "h.jsonl")
	testenv.Must(t, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600), "write")
	for _, c := range []struct {
		flags []string
		min   time.Duration
	}{
		{[]string{"--speed", "50"}, 400 * time.Millisecond}, // 20 s / 50
		{[]string{"--rate", "25"}, 400 * time.Millisecond},  // 10 gaps / 25 a second
	} {
		start := time.Now()
		out, err := runArgs(t, append([]string{"replay", path, "-q", "--brokers", k.Brokers[0]}, c.flags...)...)
		if err != nil {
			t.Fatalf("%v: %v\n%s", c.flags, err, out)
		}
		if took := time.Since(start); took < c.min {
			t.Errorf("%v: all 11 records went out in %s, want at least %s", c.flags, took, c.min)
		}
	}
}
