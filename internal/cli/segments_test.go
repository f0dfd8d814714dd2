package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/segment"
)

// cxstream segments reads users per segment and the changes per hour
// from the stored click documents.
func TestSegmentsCommand(t *testing.T) {
	r := testenv.StartRedis(t)
	st := state.New(r.Client, state.Options{})
	at := time.Date(2026, 3, 2, 10, 30, 0, 0, time.UTC).UnixMilli()
	hour := time.Hour.Milliseconds()
	doc := func(sg segment.State) []byte {
		data, err := json.Marshal(pipeline.ClickDoc{Segment: sg})
		testenv.Must(t, err, "document")
		return data
	}
	testenv.Must(t, st.Save(context.Background(), []state.Write{
		{User: "a", Side: state.Click, Data: doc(segment.State{Segment: "high_value", Recent: []segment.Change{{To: "new", At: at - 5*hour}, {From: "new", To: "high_value", At: at}}})},
		{User: "b", Side: state.Click, Data: doc(segment.State{Segment: "churned", Recent: []segment.Change{{From: "regular", To: "churned", At: at - hour}}})},
		{User: "c", Side: state.Click, Data: doc(segment.State{})},
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
