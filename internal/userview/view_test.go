package userview_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/internal/userview"
	"github.com/cxstream/cxstream/internal/userview/viewtest"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/schemas"
)

// CompileSchema compiles schemas/user-view.v1.json.
func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	raw, err := schemas.Document("user-view.v1")
	testenv.Must(t, err, "read schema")
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	testenv.Must(t, err, "parse schema")
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	testenv.Must(t, c.AddResource("user-view.v1.json", doc), "add")
	s, err := c.Compile("user-view.v1.json")
	testenv.Must(t, err, "compile")
	return s
}

func TestViewReadsLikeAnAgentNeedsAndMatchesItsSchema(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	now := time.Now()
	q := alertsink.New(r.Client, alertsink.Options{SLA: alertsink.SLA{schemas.PriorityHigh: 15 * time.Minute, schemas.PriorityNormal: time.Hour, schemas.PriorityUrgent: 5 * time.Minute, schemas.PriorityLow: 4 * time.Hour}})
	alerts := viewtest.Seed(t, r.Client, q, viewtest.Customer{UserID: "u-42", ConversationID: "conv-9", Messages: []string{
		"hello, where is my order?",
		"I was charged twice and nobody answers, this is ridiculous",
		"still nothing. my card 4111 1111 1111 1111 was billed twice, call me at +1 415 555 0100",
	}}, now)
	if len(alerts) == 0 {
		t.Fatal("the seeded chat raised no negative-chat alert")
	}
	_, err := q.Claim(ctx, alertsink.ClaimOptions{Agent: "ana", Lease: 5 * time.Minute})
	testenv.Must(t, err, "claim")

	fp, _ := funnel.New(funnel.DefaultDefinitions(), 5*time.Minute)
	cp, _ := churn.New(churn.DefaultConfig())
	b := &userview.Builder{Store: state.New(r.Client, state.Options{}), Queue: q, Funnel: fp, Churn: cp, ChurnCfg: churn.DefaultConfig(), Currency: "EUR", Now: func() time.Time { return now }}
	v, err := b.Build(ctx, "u-42")
	testenv.Must(t, err, "build")

	raw, err := json.Marshal(v)
	testenv.Must(t, err, "marshal")
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	testenv.Must(t, err, "reparse")
	if err := compileSchema(t).Validate(inst); err != nil {
		t.Fatalf("view does not match user-view.v1: %v\n%s", err, raw)
	}
	for _, leak := range []string{`"rc"`, `"hr"`, `"fence"`, `"seen"`, "4111 1111", "555 0100"} {
		if strings.Contains(string(raw), leak) {
			t.Errorf("view holds %s (storage encoding or unredacted text):\n%s", leak, raw)
		}
	}
	f := v.Funnels[0]
	if f.Funnel != "purchase" || f.StepName != "checkout" || f.Step != 2 || f.Conversions != 1 || f.Since == nil {
		t.Errorf("funnel %+v, want at checkout after one conversion", f)
	}
	if sg := v.Segment; sg == nil || sg.Name != "regular" || len(sg.Changes) != 2 || sg.Changes[0].From != "new" || sg.Changes[1].From != "" || sg.Since == nil {
		t.Errorf("segment %+v, want regular after new (one purchase)", sg)
	}
	if v.Purchases.Count != 1 || v.Purchases.Spend != 129.5 || v.Purchases.Currency != "EUR" {
		t.Errorf("purchases %+v", v.Purchases)
	}
	if len(v.Churn.Reasons) == 0 || v.Churn.Score <= 0 || v.Churn.Score >= 1 {
		t.Errorf("churn %+v", v.Churn)
	}
	if len(v.Sentiment.Conversations) != 1 || v.Sentiment.Conversations[0].ID != "conv-9" || v.Sentiment.Conversations[0].Rolling >= 0 || len(v.Sentiment.NegativeMessages) == 0 {
		t.Errorf("sentiment %+v", v.Sentiment)
	}
	if len(v.Queue) != 1 || v.Queue[0].ClaimedBy != "ana" || v.Queue[0].Position != 0 || v.Queue[0].Excerpt != alerts[len(alerts)-1].Excerpt || v.Queue[0].Priority != string(alerts[len(alerts)-1].Priority) {
		t.Errorf("queue %+v", v.Queue)
	}

	var text bytes.Buffer
	testenv.Must(t, userview.WriteText(&text, v, "u-42"), "text")
	for _, want := range []string{"User u-42", "purchase", "step 3/4 checkout since", "1 conversions", "Purchases      1, spend 129.50 EUR", "Churn risk", "conv-9", "negative", "claimed by ana (lease ends in 5m)", "redacted"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, text.String())
		}
	}
	t.Logf("summary:\n%s", text.String())

	if _, err := b.Build(ctx, "nobody"); !errors.Is(err, userview.ErrNoUser) {
		t.Fatalf("unknown user: %v", err)
	}
}
