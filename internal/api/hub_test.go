package api

import (
	"testing"

	"github.com/cxstream/cxstream/schemas"
)

func TestHubFiltersAndCutsOffASubscriberThatFallsBehind(t *testing.T) {
	h := NewHub(nil, nil)
	urgentChats := h.subscribe(map[string]bool{schemas.AlertNegativeChat: true}, schemas.PriorityUrgent.Rank())
	stalled := h.subscribe(map[string]bool{}, 0)
	send := func(typ string, p schemas.Priority) {
		h.broadcast(schemas.Alert{AlertID: typ + string(p), Type: typ, Priority: p}, []byte("{}"))
	}
	send(schemas.AlertChurnRisk, schemas.PriorityUrgent)
	send(schemas.AlertNegativeChat, schemas.PriorityHigh)
	send(schemas.AlertNegativeChat, schemas.PriorityUrgent)
	if a := <-urgentChats.ch; a.id != "negative_chatURGENT" || len(urgentChats.ch) != 0 {
		t.Fatalf("filtered subscriber got %q and %d more", a.id, len(urgentChats.ch))
	}
	// stalled never reads: once its buffer is full it is cut off (its
	// channel closes) while the others go on.
	for range cap(stalled.ch) {
		send(schemas.AlertChurnRisk, schemas.PriorityLow)
	}
	send(schemas.AlertNegativeChat, schemas.PriorityUrgent)
	n := 0
	for range stalled.ch {
		n++
	}
	if n != cap(stalled.ch) {
		t.Fatalf("stalled subscriber drained %d alerts before its channel closed, want %d", n, cap(stalled.ch))
	}
	if a := <-urgentChats.ch; a.id != "negative_chatURGENT" {
		t.Fatalf("the live subscriber missed an alert: %q", a.id)
	}
	h.unsubscribe(stalled) // already cut off: no double close
	h.unsubscribe(urgentChats)
	if len(h.subs) != 0 {
		t.Fatalf("%d subscriptions left", len(h.subs))
	}
}
