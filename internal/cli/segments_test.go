package cli

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
)

// cxstream segments reads users per segment and the changes per hour
// from the stored click documents.
func TestSegmentsCommand(t *testing.T) {
	r := testenv.StartRedis(t)
	st := state.New(r.Client, state.Options{})
	at := time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC).UnixMilli()
	hour := time.Hour.Milliseconds()
	doc := func(seg string, changes string) []byte {
		return []byte(`{"fence":{},"segment":{"segment":"` + seg + `","recent":[` + changes + `]}}`)
	}
	testenv.Must(t, st.Save(context.Background(), []state.Write{
		{User: "a", Side: state.Click, Data: doc("high_value", `{"to":"new","at":`+itoa(at-5*hour)+`},{"from":"new","to":"high_value","at":`+itoa(at)+`}`)},
		{User: "b", Side: state.Click, Data: doc("churned", `{"from":"regular","to":"churned","at":`+itoa(at-hour)+`}`)},
		{User: "c", Side: state.Click, Data: []byte(`{"fence":{}}`)},
	}), "seed")
	out, err := cx(t, "segments", "--redis", r.Addr, "--hours", "6")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"users per segment (2 users):", "churned                 1   50.0%", "high_value              1   50.0%", "potential               0    0.0%",
		"6 hours up to 2026-03-02 10:30 (UTC, event time)", "03-02 10h", "03-02 05h"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if _, err := cx(t, "segments", "--redis", r.Addr, "--hours", "49"); err == nil || !strings.Contains(err.Error(), "--hours must be between 0 and 48") {
		t.Errorf("--hours 49: %v", err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
