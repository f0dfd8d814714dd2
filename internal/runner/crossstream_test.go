package runner

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

// Each stream's processors read the other stream's state as of the
// event's time, whichever topic the consumer could read further. The
// reference runs below feed one stream entirely before the other, which
// gives the event-time answer for the scenario; the backfill runs find
// both topics full when the processor starts, with many earlier records of
// other users in front of the scenario's on one topic and a small
// max_poll_records, so that topic is read far more slowly than the other.
// Before the consumer merged a partition's two topics by event time, the
// faster topic ran ahead and the backfill gave another answer.

// backfill writes fill's records and then the scenario's (both topics, in
// the order given) before the processor starts, and returns the
// processor's view once both topics are read.
func backfill(t *testing.T, cfgFor func(env) config.Config, fill []*kgo.Record, scenario ...[]*kgo.Record) env {
	t.Helper()
	e := newEnv(t)
	produce(t, e.kafka.Brokers, fill...)
	for _, recs := range scenario {
		produce(t, e.kafka.Brokers, recs...)
	}
	r := start(t, cfgFor(e))
	waitRead(t, e)
	r.stop(t)
	return e
}

// inTurn feeds the scenario's topics one after the other into a running
// processor, each read to its end before the next is written.
func inTurn(t *testing.T, cfgFor func(env) config.Config, scenario ...[]*kgo.Record) env {
	t.Helper()
	e := newEnv(t)
	r := start(t, cfgFor(e))
	for _, recs := range scenario {
		produce(t, e.kafka.Brokers, recs...)
		waitRead(t, e)
	}
	r.stop(t)
	return e
}

func waitRead(t *testing.T, e env) {
	t.Helper()
	testenv.Eventually(t, 60*time.Second, "both topics read", func() bool {
		lag, err := groupLag(e.kafka.Brokers, "g")
		return err == nil && lag == 0
	})
}

func slowConfig(e env) config.Config {
	cfg := e.config("x", "g")
	cfg.Processing.IdleAdvance = 0
	cfg.Processing.MaxPollRecords = 20
	return cfg
}

// writeOrders are the scenario's two topics, written in either order.
func writeOrders(clicks, chats []*kgo.Record) map[string][][]*kgo.Record {
	return map[string][][]*kgo.Record{"clicks written first": {clicks, chats}, "chats written first": {chats, clicks}}
}

// fillClicks are n earlier page views of other users on every partition.
func fillClicks(n int, before int64) []*kgo.Record {
	var out []*kgo.Record
	for i := range n {
		u := fmt.Sprintf("f-%d", i%200)
		out = append(out, click(u, fmt.Sprintf("fc-%d", i), schemas.ClickPageView, before-int64(n-i)*1000, 0))
	}
	return out
}

// fillChats are n earlier neutral messages of other users.
func fillChats(n int, before int64) []*kgo.Record {
	var out []*kgo.Record
	for i := range n {
		u := fmt.Sprintf("f-%d", i%200)
		out = append(out, chat(u, fmt.Sprintf("fm-%d", i), "hello, which course covers data structures?", before-int64(n-i)*1000))
	}
	return out
}

// Churn scores a click with the negative chats of the 14 days before it:
// the day-10 click sees the day-9 complaints even when the clickstream is
// read long before the chat topic.
func TestChurnReadsChatsAsOfTheClick(t *testing.T) {
	day := int64(24 * time.Hour / time.Millisecond)
	base := time.Now().Add(-40*24*time.Hour).UnixMilli() / 1000 * 1000
	var clicks, chats []*kgo.Record
	for i := range 6 {
		clicks = append(clicks, click("u-1", fmt.Sprintf("c%d", i), schemas.ClickPageView, base+int64(i)*2*day, 0))
	}
	for i, text := range []string{"this is terrible, I want a refund now", "worst service ever, I am furious", "still broken, this is unacceptable"} {
		chats = append(chats, chat("u-1", fmt.Sprintf("m%d", i), text, base+9*day+int64(i)*60_000))
	}
	churnOf := func(e env) string {
		doc := e.redis.Client.HGet(context.Background(), "x:{u-1}:click", "s").Val()
		var d struct {
			Churn json.RawMessage `json:"churn"`
		}
		testenv.Must(t, json.Unmarshal(docJSON(t, []byte(doc)), &d), "click doc")
		return string(d.Churn)
	}
	// Chats first: every click finds the complaints before it (and counts
	// none after it).
	want := churnOf(inTurn(t, slowConfig, chats, clicks))
	for order, scenario := range writeOrders(clicks, chats) {
		if got := churnOf(backfill(t, slowConfig, fillChats(1500, base), scenario...)); got != want {
			t.Errorf("backfill, %s: churn state\n got %s\nwant %s (the chats read before the clicks)", order, got, want)
		}
	}
}

// A negative chat's priority and its open_cart reason come from the funnel
// stage at the message's time: a user adds to cart, then an hour later
// complains; the alert says so even when the chat topic is read long
// before the clickstream.
func TestNegativeChatReadsTheFunnelAsOfTheMessage(t *testing.T) {
	base := time.Now().Add(-2*time.Hour).UnixMilli() / 1000 * 1000
	clicks := []*kgo.Record{
		click("u-2", "c1", schemas.ClickProductView, base, 0),
		click("u-2", "c2", schemas.ClickAddToCart, base+60_000, 0),
	}
	chats := []*kgo.Record{chat("u-2", "m1", "I was charged twice and nobody answers, I want a refund NOW", base+3_600_000)}
	alertOf := func(e env) string {
		for _, rec := range readTopic(t, e.kafka.Brokers, "cx.alerts.v2", 1) {
			var a schemas.Alert
			testenv.Must(t, json.Unmarshal(rec.Value, &a), "alert")
			if a.Type != schemas.AlertNegativeChat || a.UserID != "u-2" {
				continue
			}
			var codes []string
			for _, reason := range a.Reasons {
				codes = append(codes, reason.Code)
			}
			return a.AlertID + " " + string(a.Priority) + " " + strings.Join(codes, ",")
		}
		return "no negative-chat alert"
	}
	want := alertOf(inTurn(t, slowConfig, clicks, chats))
	if !strings.Contains(want, "open_cart") {
		t.Fatalf("the reference alert lacks open_cart: %s", want)
	}
	for order, scenario := range writeOrders(clicks, chats) {
		if got := alertOf(backfill(t, slowConfig, fillClicks(1500, base), scenario...)); got != want {
			t.Errorf("backfill, %s: negative-chat alert\n got %s\nwant %s (the clicks read before the chat)", order, got, want)
		}
	}
}
