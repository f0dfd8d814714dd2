package demo

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.uber.org/zap"
)

// The demo is what a newcomer runs first: it must process every event it
// generates and show alerts of both kinds being produced.
func TestDemoProcessesEverythingAndAlerts(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), Options{Duration: 3 * time.Second, Users: 300, Rate: 1500, Seed: 3, Partitions: 2}, &out, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	s := out.String()
	m := regexp.MustCompile(`events produced (\d+), processed (\d+)`).FindStringSubmatch(s)
	if m == nil || m[1] != m[2] {
		t.Fatalf("not everything was processed:\n%s", s)
	}
	// Not a speed check (a loaded machine produces fewer in 3 s): enough
	// events that every kind of outcome below can appear.
	if n, _ := strconv.Atoi(m[1]); n < 500 {
		t.Fatalf("only %d events produced:\n%s", n, s)
	}
	if !regexp.MustCompile(`negative_chat\s+[1-9]\d*`).MatchString(s) || !regexp.MustCompile(`(?m)^\S+ \w+\s+negative_chat user-`).MatchString(s) {
		t.Fatalf("no negative-chat alerts shown:\n%s", s)
	}
	// The default locale is mixed: Chinese negative chats alert too, with
	// their (redacted) Chinese excerpt.
	if !regexp.MustCompile(`(?m)^\S+ \w+\s+negative_chat user-.*\p{Han}`).MatchString(s) {
		t.Fatalf("no Chinese negative-chat alert shown:\n%s", s)
	}
	if !regexp.MustCompile(`4\. purchase\s+[1-9]`).MatchString(s) {
		t.Fatalf("no conversions in the funnel summary:\n%s", s)
	}
	// The funnel by segment (one group until users have segments) and by
	// the generated utm_source (five groups), from the users' state.
	if !regexp.MustCompile(`funnel "purchase" by segment, first touch: [1-9]\d* attempts in [1-9]\d* groups?\n  group +attempts +view +cart +checkout +purchase +conversions +median +p90\n`).MatchString(s) ||
		!regexp.MustCompile(`funnel "purchase" by property.utm_source, first touch: [1-9]\d* attempts in 5 groups\n`).MatchString(s) ||
		!regexp.MustCompile(`(?m)^  google +[1-9]\d* +100\.0%`).MatchString(s) {
		t.Fatalf("no funnel breakdowns in the summary:\n%s", s)
	}
	// Users per segment: every user who clicked has one; in a
	// three-second run they are new, or regular once they bought.
	seg := regexp.MustCompile(`users per segment \((\d+) users\)`).FindStringSubmatch(s)
	if seg == nil || seg[1] == "0" || !regexp.MustCompile(`(?m)^  new\s+[1-9]`).MatchString(s) || !regexp.MustCompile(`(?m)^  regular\s+[1-9]`).MatchString(s) {
		t.Fatalf("no users per segment in the summary:\n%s", s)
	}
}
