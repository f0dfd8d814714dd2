package sentiment

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

func scorer(t testing.TB) *DefaultScorer {
	t.Helper()
	s, err := NewDefaultScorer()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDefaultScorerLabels(t *testing.T) {
	s := scorer(t)
	cases := map[string]Label{
		"":                                     Neutral,
		"ok":                                   Neutral,
		"can you tell me when my order ships?": Neutral,
		"thanks so much, that fixed it!":       Positive,
		"I love the new course :)":             Positive,
		"this is the worst service I have ever had":               Negative,
		"I was charged twice and I want my money back":            Negative,
		"the app is still not working after your update":          Negative,
		"been on hold for an hour and they hung up on me":         Negative,
		"I can't log in and nobody answers, this is ridiculous!!": Negative,
	}
	for text, want := range cases {
		if got := s.Score(text); got.Label != want {
			t.Errorf("%q: %+v, want %s", text, got, want)
		}
	}
}

func TestScoreRangeAndConfidence(t *testing.T) {
	s := scorer(t)
	for _, text := range []string{"", "ok", "AWFUL!!! :(", "great great great great", strings.Repeat("terrible ", 200)} {
		sc := s.Score(text)
		if sc.Value < -1 || sc.Value > 1 || sc.Confidence < 0 || sc.Confidence > 1 || math.IsNaN(sc.Value) {
			t.Errorf("%q: out of range %+v", text, sc)
		}
	}
}

func TestRollingIsOrderIndependent(t *testing.T) {
	type obs struct {
		v  float64
		at int64
	}
	in := []obs{{-0.9, 1000}, {0.5, 61_000}, {-0.2, 3_601_000}, {0.1, 1_800_000}}
	var a, b Rolling
	for _, o := range in {
		a.Add(o.v, o.at, time.Hour, 3)
	}
	for i := len(in) - 1; i >= 0; i-- {
		b.Add(in[i].v, in[i].at, time.Hour, 3)
	}
	if math.Abs(a.Mean-b.Mean) > 1e-12 || a.Count != 4 || len(a.Recent) != 3 {
		t.Fatalf("a %+v b %+v", a, b)
	}
	// By hand: weights 2^-(T-t)/h with T = 3_601_000.
	var num, den float64
	for _, o := range in {
		w := math.Exp2(-float64(3_601_000-o.at) / 3_600_000)
		num += o.v * w
		den += w
	}
	if math.Abs(a.Mean-num/den) > 1e-12 {
		t.Fatalf("mean %v, want %v", a.Mean, num/den)
	}
}

type fixedScorer map[string]float64

func (f fixedScorer) Score(text string) Score {
	v := f[text]
	l := Neutral
	if v <= DefaultNegativeThreshold {
		l = Negative
	}
	return Score{Value: v, Label: l, Confidence: 1}
}

func msg(id, conv, sender, text string, at int64) schemas.ChatMessage {
	return schemas.ChatMessage{EventID: id, ConversationID: conv, UserID: "u1", Sender: sender, Text: text, EventTime: at}
}

func TestNegativeChatAlert(t *testing.T) {
	sc := fixedScorer{"furious": -0.9, "angry": -0.65, "meh": -0.4, "fine": 0.1, "ok": 0}
	p, err := NewProcessor(DefaultConfig(), sc)
	if err != nil {
		t.Fatal(err)
	}
	min := int64(60_000)
	type step struct {
		m        schemas.ChatMessage
		cust     Customer
		alert    bool
		priority schemas.Priority
	}
	cases := []struct {
		name  string
		steps []step
	}{
		{"neutral conversation never alerts", []step{
			{m: msg("1", "c", "customer", "ok", 0)}, {m: msg("2", "c", "customer", "fine", min)}}},
		{"agent text is not scored", []step{
			{m: msg("1", "c", "agent", "furious", 0)}}},
		{"a strongly negative message alerts once, then cooldown", []step{
			{m: msg("1", "c", "customer", "angry", 0), alert: true, priority: schemas.PriorityNormal},
			{m: msg("2", "c", "customer", "angry", min)},
			{m: msg("3", "c", "customer", "angry", 31*min), alert: true, priority: schemas.PriorityHigh}}},
		{"escalation inside the cooldown alerts again", []step{
			{m: msg("1", "c", "customer", "angry", 0), alert: true, priority: schemas.PriorityNormal},
			{m: msg("2", "c", "customer", "furious", min), alert: true, priority: schemas.PriorityHigh}}},
		{"a rolling drop alerts after two messages", []step{
			{m: msg("1", "c", "customer", "meh", 0)},
			{m: msg("2", "c", "customer", "meh", min), alert: true, priority: schemas.PriorityLow}}},
		{"value and checkout raise priority", []step{
			{m: msg("1", "c", "customer", "furious", 0), cust: Customer{Purchases: 3, Spend: 450, FunnelStage: "checkout_start"}, alert: true, priority: schemas.PriorityUrgent}}},
		{"conversations are separate", []step{
			{m: msg("1", "a", "customer", "angry", 0), alert: true, priority: schemas.PriorityNormal},
			{m: msg("2", "b", "customer", "angry", min), alert: true, priority: schemas.PriorityNormal}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := &State{}
			for i, s := range c.steps {
				out := p.Apply(st, s.m, s.cust)
				if (out.Alert != nil) != s.alert {
					t.Fatalf("step %d: alert %+v, want alert=%v", i, out.Alert, s.alert)
				}
				if out.Alert != nil {
					if out.Alert.Priority != s.priority {
						t.Errorf("step %d: priority %s, want %s (%v)", i, out.Alert.Priority, s.priority, out.Alert.Reasons)
					}
					if out.Alert.AlertID != schemas.AlertID(schemas.AlertNegativeChat, "u1", s.m.EventID) || len(out.Alert.Reasons) == 0 {
						t.Errorf("step %d: bad alert %+v", i, out.Alert)
					}
				}
			}
		})
	}
}

func TestAlertExcerptIsRedactedAndValid(t *testing.T) {
	sc := fixedScorer{"charged twice on 4111 1111 1111 1111, mail me at a.b@example.com": -0.9}
	p, _ := NewProcessor(DefaultConfig(), sc)
	out := p.Apply(&State{}, msg("1", "c", "customer", "charged twice on 4111 1111 1111 1111, mail me at a.b@example.com", 1_763_900_000_000), Customer{})
	if out.Alert == nil {
		t.Fatal("no alert")
	}
	if strings.Contains(out.Alert.Excerpt, "4111") || strings.Contains(out.Alert.Excerpt, "a.b@") {
		t.Fatalf("excerpt not redacted: %q", out.Alert.Excerpt)
	}
	out.Alert.DetectedAt = 1
	v, _ := schemas.NewValidator(0)
	if err := v.ValidateAlert(*out.Alert); err != nil {
		t.Fatal(err)
	}
}

func TestHistoryIsPruned(t *testing.T) {
	p, _ := NewProcessor(DefaultConfig(), fixedScorer{"angry": -0.65})
	st := &State{}
	day := int64(24 * 3600 * 1000)
	for i := int64(0); i < 30; i++ {
		p.Apply(st, msg("m", "c"+string(rune('a'+i)), "customer", "angry", i*day), Customer{})
	}
	if len(st.NegativeAt) != 15 || len(st.Conversations) > 8 {
		t.Fatalf("negatives %d conversations %d", len(st.NegativeAt), len(st.Conversations))
	}
}

// The shipped scorer drives the alert for Chinese chats: a furious message
// alerts at once with the model's reasons, a plain question never does.
func TestChineseChatAlertsWithReasons(t *testing.T) {
	p, err := NewProcessor(DefaultConfig(), scorer(t))
	if err != nil {
		t.Fatal(err)
	}
	st := &State{}
	if out := p.Apply(st, msg("1", "c", "customer", "怎么下载课件?", 0), Customer{}); out.Alert != nil || out.Score.Label == Negative {
		t.Fatalf("question: %+v", out)
	}
	out := p.Apply(st, msg("2", "c", "customer", "退款到现在还没到账,太差劲了,电话13800138000", 60_000), Customer{})
	if out.Alert == nil || out.Score.Language != Chinese {
		t.Fatalf("no alert: %+v", out)
	}
	if !strings.Contains(strings.Join(out.Alert.Reasons, ";"), "because of: ") || strings.Contains(out.Alert.Excerpt, "13800138000") || !strings.Contains(out.Alert.Excerpt, "退款") {
		t.Fatalf("alert %+v", out.Alert)
	}
}
