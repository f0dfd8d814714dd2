package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/segment"
)

// Users per segment and changes per hour over the 48 hours up to the
// latest change, from the stored documents.
func TestSegmentsCountsUsersAndChangesPerHour(t *testing.T) {
	r := testenv.StartRedis(t)
	st := state.New(r.Client, state.Options{})
	hour := time.Hour.Milliseconds()
	end := (t0/hour)*hour + 30*time.Minute.Milliseconds() // the latest change, half past an hour
	users := map[string]segment.State{
		"a": {Segment: "high_value", Recent: []segment.Change{{To: "new", At: end - 60*hour}, {From: "new", To: "regular", At: end - 47*hour}, {From: "regular", To: "high_value", At: end}}},
		"b": {Segment: "potential", Recent: []segment.Change{{To: "new", At: end - 10*hour}, {From: "new", To: "potential", At: end - 2*hour}}},
		"c": {Segment: "new", Recent: []segment.Change{{To: "new", At: end - 3*hour}}},
		// d's history is full (history 2) and starts inside the window:
		// older changes of d in the window were dropped.
		"d": {Segment: "old_name", Recent: []segment.Change{{From: "x", To: "y", At: end - 5*hour}, {From: "y", To: "old_name", At: end - 4*hour}}},
		"e": {}, // no click yet
	}
	var writes []state.Write
	for id, sg := range users {
		data, _ := json.Marshal(pipeline.ClickDoc{Segment: sg})
		writes = append(writes, state.Write{User: id, Side: state.Click, Data: data})
	}
	testenv.Must(t, st.Save(context.Background(), writes), "save")
	s, err := Segments(context.Background(), st, []string{"high_value", "new", "potential", "regular"}, 2, 0)
	testenv.Must(t, err, "segments")
	if s.Until != end || s.Clipped != 2 {
		t.Errorf("until %d (want %d), clipped %d (want 2: b and d keep a full history that starts inside the window)", s.Until, end, s.Clipped)
	}
	if fmt.Sprint(s.Users) != "map[high_value:1 new:1 old_name:1 potential:1]" || strings.Join(s.Names, ",") != "high_value,new,potential,regular,old_name" {
		t.Errorf("users %v names %v", s.Users, s.Names)
	}
	h := end / hour
	want := map[int64]map[string]int{h: {"high_value": 1}, h - 47: {"regular": 1}, h - 10: {"new": 1}, h - 2: {"potential": 1}, h - 3: {"new": 1}, h - 5: {"y": 1}, h - 4: {"old_name": 1}}
	if fmt.Sprint(s.ByHour) != fmt.Sprint(want) {
		t.Errorf("by hour %v, want %v (the change 60 h before is outside the window)", s.ByHour, want)
	}
	var out bytes.Buffer
	PrintSegments(&out, s, 3)
	text := out.String()
	for _, line := range []string{"users per segment (4 users):", "high_value", "regular                 0    0.0%", "3 hours up to", "total", "users changed segment more often"} {
		if !strings.Contains(text, line) {
			t.Errorf("output lacks %q:\n%s", line, text)
		}
	}
	if got := strings.Count(text, "h "); got < 3 {
		t.Errorf("want 3 hour rows:\n%s", text)
	}
}
