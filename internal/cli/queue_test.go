package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

func TestQueueCommandsClaimExtendReleaseResolve(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	testenv.Must(t, alertsink.New(r.Client, alertsink.Options{SLA: alertsink.SLA(config.DefaultQueue().SLA)}).Push(ctx, []*schemas.Alert{
		{Type: schemas.AlertNegativeChat, UserID: "u-1", ConversationID: "conv-1", Priority: schemas.PriorityHigh, EventTime: 1, Reasons: []schemas.AlertReason{{Code: schemas.CodeStrongNegativeMessage, Text: "strongly negative message"}}, Excerpt: "charged twice, card [card]"},
		{Type: schemas.AlertNegativeChat, UserID: "u-2", ConversationID: "conv-2", Priority: schemas.PriorityLow, EventTime: 2, Reasons: []schemas.AlertReason{{Code: schemas.CodeStrongNegativeMessage, Text: "negative"}}},
	}), "queue")
	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		root := NewRoot(&out, &errOut)
		root.SetArgs(append(args, "--redis", r.Addr))
		err := root.Execute()
		return out.String(), err
	}
	out, err := run("queue")
	if err != nil || !strings.Contains(out, "2 waiting, 0 claimed") || !strings.Contains(out, "CONVERSATION") ||
		!strings.Contains(out, "conv-1") || !strings.Contains(out, "strongly negative message") || !regexp.MustCompile(`in (14m\d+s|15m)`).MatchString(out) {
		t.Fatalf("queue: %v\n%s", err, out)
	}
	out, err = run("queue", "claim", "--agent", "ana", "--lease", "5m", "--json")
	var it alertsink.Item
	if err != nil || json.Unmarshal([]byte(out), &it) != nil || it.ConversationID != "conv-1" || it.Claim == nil || it.Claim.Agent != "ana" {
		t.Fatalf("claim: %v\n%s", err, out)
	}
	if _, err := run("queue", "claim", "--agent", "bob", "--conversation", "conv-1"); err == nil || !strings.Contains(err.Error(), `claimed by agent "ana"`) {
		t.Fatalf("bob's claim of ana's conversation: %v", err)
	}
	if out, err = run("queue", "extend", "conv-1", "--agent", "ana", "--lease", "10m"); err != nil || !strings.Contains(out, "extended conv-1") {
		t.Fatalf("extend: %v %s", err, out)
	}
	out, _ = run("queue")
	if !strings.Contains(out, "1 waiting, 1 claimed") || !strings.Contains(out, "ana") || !strings.Contains(out, "met") {
		t.Fatalf("queue after claim:\n%s", out)
	}
	if _, err = run("queue", "release", "conv-1", "--agent", "ana"); err != nil {
		t.Fatalf("release: %v", err)
	}
	if _, err = run("queue", "claim", "--agent", "bob", "--conversation", "conv-1"); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
	if _, err = run("queue", "resolve", "conv-1", "--agent", "bob"); err == nil {
		t.Fatal("resolve without an outcome was accepted")
	}
	if out, err = run("queue", "resolve", "conv-1", "--agent", "bob", "--outcome", "refunded"); err != nil || !strings.Contains(out, "resolved (refunded) conv-1") {
		t.Fatalf("resolve: %v %s", err, out)
	}
	if out, err = run("queue", "remove", "conv-2"); err != nil || !strings.Contains(out, "removed conv-2") {
		t.Fatalf("remove: %v %s", err, out)
	}
	if out, _ = run("queue"); !strings.Contains(out, "0 waiting, 0 claimed") {
		t.Fatalf("queue at the end:\n%s", out)
	}
}
