package alertsink

import (
	"context"
	"testing"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

func alert(user, conv string, p schemas.Priority, at int64) *schemas.Alert {
	return &schemas.Alert{Type: schemas.AlertNegativeChat, UserID: user, ConversationID: conv, Priority: p, EventTime: at, AlertID: user + conv + string(p)}
}

func TestQueueOrdersByPriorityThenAgeAndEscalates(t *testing.T) {
	r := testenv.StartRedis(t)
	q := NewQueue(r.Client, "cx")
	ctx := context.Background()
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{
		alert("a", "a1", schemas.PriorityNormal, 1000),
		alert("b", "b1", schemas.PriorityHigh, 3000),
		alert("c", "c1", schemas.PriorityNormal, 500), // older than a1
		{Type: schemas.AlertChurnRisk, UserID: "d", Priority: schemas.PriorityUrgent},
	}), "push")
	// a1 escalates to URGENT; a replay of its NORMAL alert must not demote it.
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{alert("a", "a1", schemas.PriorityUrgent, 4000)}), "escalate")
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{alert("a", "a1", schemas.PriorityNormal, 1000)}), "replay")
	if n, _ := q.Len(ctx); n != 3 {
		t.Fatalf("len %d, want 3 conversations (churn alerts do not queue)", n)
	}
	var order []string
	for {
		a, ok, err := q.Pop(ctx)
		testenv.Must(t, err, "pop")
		if !ok {
			break
		}
		order = append(order, a.ConversationID+":"+string(a.Priority))
	}
	want := "a1:URGENT b1:HIGH c1:NORMAL"
	if got := join(order); got != want {
		t.Fatalf("pop order %q, want %q", got, want)
	}
}

func TestQueueRemoveErasesAUser(t *testing.T) {
	r := testenv.StartRedis(t)
	q := NewQueue(r.Client, "cx")
	ctx := context.Background()
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{alert("u*1", "x", schemas.PriorityLow, 1), alert("u*1", "y", schemas.PriorityLow, 2), alert("u*12", "z", schemas.PriorityLow, 3)}), "push")
	n, err := q.Remove(ctx, "u*1")
	testenv.Must(t, err, "remove")
	left, _ := q.List(ctx, 10)
	if n != 2 || len(left) != 1 || left[0].UserID != "u*12" {
		t.Fatalf("removed %d, left %+v", n, left)
	}
}

func join(ss []string) string {
	out := ""
	for i, s := range ss {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}
