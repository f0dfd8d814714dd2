package userview

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText prints the view for a person: one section per concern,
// times in UTC with how long ago.
func WriteText(w io.Writer, v View, shownID string) error {
	now := v.GeneratedAt
	p := &printer{w: w}
	id := shownID
	if id != v.UserID {
		id += " (stored as " + v.UserID + ")"
	}
	p.f("User %s\n", id)
	if v.Activity.LastSeen != nil {
		p.f("  lifecycle %s; first seen %s, last seen %s\n", or(v.Activity.Lifecycle, "unknown"), when(v.Activity.FirstSeen, now), when(v.Activity.LastSeen, now))
	}
	if sg := v.Segment; sg != nil {
		p.f("  segment %s since %s", sg.Name, when(sg.Since, now))
		if len(sg.Changes) > 1 {
			p.f(" (before: %s)", or(sg.Changes[0].From, "none"))
		}
		p.f("\n")
	}

	p.f("\nFunnels\n")
	for _, f := range v.Funnels {
		pos := "not in the funnel"
		if f.Step >= 0 {
			pos = fmt.Sprintf("step %d/%d %s since %s", f.Step+1, f.Steps, f.StepName, when(f.Since, now))
		}
		p.f("  %-12s %s; %d conversions, %d abandonments\n", f.Funnel, pos, f.Conversions, f.Abandonments)
	}

	pu := v.Purchases
	p.f("\nPurchases      %d, spend %.2f %s", pu.Count, pu.Spend, pu.Currency)
	if pu.LastAt != nil {
		p.f(", last %s", when(pu.LastAt, now))
	}
	p.f("\n")

	c := v.Churn
	level := "below"
	if c.Score >= c.Threshold {
		level = "AT OR ABOVE"
	}
	p.f("Churn risk     %.2f now (%s the alert threshold %.2f; %.2f when last evaluated)\n", c.Score, level, c.Threshold, c.LastScore)
	for _, r := range c.Reasons {
		p.f("  - %s\n", r)
	}

	s := v.Sentiment
	p.f("\nSentiment      rolling %+.2f (%s) over %d messages\n", s.Rolling, mood(s.Rolling), s.Messages)
	for _, cv := range s.Conversations {
		p.f("  %-16s %+.2f (%s), %d messages, %d negative, last %s\n", cv.ID, cv.Rolling, mood(cv.Rolling), cv.Messages, cv.Negatives, when(&cv.LastAt, now))
	}
	if len(s.NegativeMessages) > 0 {
		var ts []string
		for i, t := range s.NegativeMessages {
			if i == 5 {
				ts = append(ts, fmt.Sprintf("and %d more", len(s.NegativeMessages)-5))
				break
			}
			ts = append(ts, ago(t, now))
		}
		p.f("  negative messages: %s (text is not stored; see the queue excerpts)\n", strings.Join(ts, ", "))
	}
	if len(s.SupportContacts) > 0 {
		p.f("  support contacts: %d recent, latest %s\n", len(s.SupportContacts), ago(s.SupportContacts[0], now))
	}

	p.f("\nSupport queue")
	if len(v.Queue) == 0 {
		p.f("  nothing open\n")
	} else {
		p.f("\n")
	}
	for _, q := range v.Queue {
		state := fmt.Sprintf("waiting, position %d", q.Position)
		if q.ClaimedBy != "" {
			state = "claimed by " + q.ClaimedBy
			if q.LeaseExpiresAt != nil {
				state += fmt.Sprintf(" (lease ends in %s)", short(q.LeaseExpiresAt.Sub(now)))
			}
		}
		sla := ""
		switch {
		case q.SLABreached:
			sla = ", SLA BREACHED"
		case q.SLADeadline != nil && q.ClaimedBy == "" && q.SLADeadline.After(now):
			sla = ", SLA due in " + short(q.SLADeadline.Sub(now))
		}
		p.f("  %-16s %-6s %s, in the queue %s%s\n", q.ConversationID, q.Priority, state, short(time.Duration(q.WaitingSeconds*float64(time.Second))), sla)
		if len(q.Reasons) > 0 {
			p.f("    why: %s\n", strings.Join(q.Reasons, "; "))
		}
		if q.Excerpt != "" {
			p.f("    latest negative message (redacted): %q\n", q.Excerpt)
		}
	}
	return p.err
}

type printer struct {
	w   io.Writer
	err error
}

func (p *printer) f(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func mood(v float64) string {
	switch {
	case v <= -0.25:
		return "negative"
	case v >= 0.25:
		return "positive"
	}
	return "neutral"
}

func when(t *time.Time, now time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC") + " (" + ago(*t, now) + ")"
}

func ago(t, now time.Time) string {
	d := now.Sub(t)
	if d < 0 {
		return "in " + short(-d)
	}
	return short(d) + " ago"
}

// short keeps the largest unit or two: 3d4h, 2h5m, 4m, 12s.
func short(d time.Duration) string {
	d = d.Round(time.Second)
	days, h, m, s := int(d.Hours())/24, int(d.Hours())%24, int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case days > 0:
		return fmt.Sprintf("%dd%dh", days, h)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", s)
}
