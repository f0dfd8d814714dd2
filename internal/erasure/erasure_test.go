package erasure

import (
	"context"
	"testing"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/collect"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

// A person browsed as an anonymous visitor, then signed in: the history
// under the anonymous id is theirs too. Erasing the user leaves nothing of
// either id, with pseudonymisation on; another user is untouched.
func TestErasingAUserErasesTheirAnonymousHistory(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	pseudo := privacy.NewPseudonymizer("k")
	st := state.New(r.Client, state.Options{})
	q := alertsink.New(r.Client, alertsink.Options{})
	links := collect.NewLinks(r.Client, "cx", 0, pseudo)
	user, anon, other := pseudo.ID("u-1"), pseudo.ID("anon-9"), pseudo.ID("u-2")
	testenv.Must(t, st.SaveWithTimers(ctx, []state.Timer{{Index: st.TimerIndex("cx.clickstream.v2", 1), User: anon, Due: 5}}, []state.Write{
		{User: user, Side: state.Click, Data: []byte(`{}`)},
		{User: anon, Side: state.Click, Data: []byte(`{}`)},
		{User: anon, Side: state.Chat, Data: []byte(`{}`)},
		{User: other, Side: state.Click, Data: []byte(`{}`)},
	}), "state")
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{{AlertID: "a1", Type: schemas.AlertNegativeChat, UserID: anon, ConversationID: "c", Priority: schemas.PriorityHigh, EventTime: 1}}), "queue")
	testenv.Must(t, links.Link(ctx, map[string]string{"anon-9": "u-1"}), "link")

	res, err := (&Eraser{Store: st, Queue: q, Links: links, Pseudonyms: pseudo}).Erase(ctx, "u-1")
	testenv.Must(t, err, "erase")
	if res.AnonymousIDs != 1 || res.QueueEntries != 1 || res.Keys < 4 {
		t.Fatalf("erased %+v", res)
	}
	for _, k := range r.Client.Keys(ctx, "*").Val() {
		if k != st.Key(other, state.Click) {
			t.Errorf("left behind: %s", k)
		}
	}
	if r.Client.Exists(ctx, st.Key(other, state.Click)).Val() != 1 {
		t.Error("another user was erased")
	}
}
