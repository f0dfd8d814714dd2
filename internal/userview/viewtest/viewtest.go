// Package viewtest seeds Redis with a realistic customer for tests of the
// user view, the API and the console: state documents made by the real
// processors from events, and a support-queue item.
package viewtest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/processors/segment"
	"github.com/cxstream/cxstream/processors/sentiment"
	"github.com/cxstream/cxstream/schemas"
)

// Customer describes the seeded user.
type Customer struct {
	UserID, ConversationID string
	// Messages are the customer's chat lines, oldest first.
	Messages []string
}

// Seed applies a purchase, a second visit up to checkout and the chat
// messages (one a minute, ending at now) with the default processors,
// saves the documents and queues the negative-chat alerts. It returns the
// alerts.
func Seed(t testing.TB, rdb redis.UniversalClient, q *alertsink.Queue, c Customer, now time.Time) []*schemas.Alert {
	t.Helper()
	ctx := context.Background()
	fp, err := funnel.New(funnel.DefaultDefinitions(), 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	scorer, err := sentiment.NewDefaultScorer()
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sentiment.NewProcessor(sentiment.DefaultConfig(), scorer)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := segment.New(segment.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	click := pipeline.ClickDoc{Fence: map[string]int64{}, Funnel: funnel.State{}}
	start := now.Add(-3 * time.Hour).UnixMilli()
	events := []schemas.ClickEvent{
		{Type: schemas.ClickProductView, ItemID: "sku-1"},
		{Type: schemas.ClickAddToCart, ItemID: "sku-1"},
		{Type: schemas.ClickCheckoutStart},
		{Type: schemas.ClickPurchase, Amount: 129.5, Currency: "USD"},
		{Type: schemas.ClickProductView, ItemID: "sku-2"},
		{Type: schemas.ClickAddToCart, ItemID: "sku-2"},
		{Type: schemas.ClickCheckoutStart},
	}
	for i, ev := range events {
		ev.Schema, ev.UserID, ev.EventID = schemas.ClickstreamV1, c.UserID, c.UserID+"-click-"+string(rune('a'+i))
		ev.EventTime = start + int64(i)*int64(10*time.Minute/time.Millisecond)
		fp.Apply(click.Funnel, ev)
		churn.Observe(&click.Churn, ev)
		ch := click.Churn
		facts := processors.Facts{FirstSeen: ch.FirstSeen, LastSeen: ch.LastSeen, Purchases: ch.Purchases, Spend: ch.Spend, LastPurchase: ch.LastPurchase, Day: ch.Day, DailyEvents: ch.Days[:]}
		sg.Evaluate(&click.Segment, c.UserID, facts, ev.EventTime, schemas.SegmentTriggerEvent)
	}
	chat := pipeline.ChatDoc{Fence: map[string]int64{}}
	cust := sentiment.Customer{Purchases: click.Churn.Purchases, Spend: click.Churn.Spend, FunnelStage: fp.Stage(click.Funnel), Segment: click.Segment.Segment}
	var alerts []*schemas.Alert
	for i, text := range c.Messages {
		m := schemas.ChatMessage{Schema: schemas.ChatV1, EventID: c.UserID + "-chat-" + string(rune('a'+i)), ConversationID: c.ConversationID, UserID: c.UserID,
			Sender: schemas.SenderCustomer, Text: text, EventTime: now.Add(time.Duration(i-len(c.Messages)+1) * time.Minute).UnixMilli()}
		if out := sp.Apply(&chat.Sentiment, m, cust); out.Alert != nil {
			out.Alert.DetectedAt = m.EventTime
			alerts = append(alerts, out.Alert)
		}
	}
	clickJSON, _ := json.Marshal(click)
	chatJSON, _ := json.Marshal(chat)
	st := state.New(rdb, state.Options{})
	if err := st.Save(ctx, []state.Write{{User: c.UserID, Side: state.Click, Data: clickJSON}, {User: c.UserID, Side: state.Chat, Data: chatJSON}}); err != nil {
		t.Fatal(err)
	}
	if err := q.Push(ctx, alerts); err != nil {
		t.Fatal(err)
	}
	return alerts
}
