package alertsink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

func alert(user, conv string, p schemas.Priority, at int64) *schemas.Alert {
	return &schemas.Alert{Type: schemas.AlertNegativeChat, UserID: user, ConversationID: conv, Priority: p, EventTime: at, AlertID: user + conv + string(p), Reasons: []schemas.AlertReason{{Code: schemas.CodeStrongNegativeMessage, Text: "negative"}}, Excerpt: "bad"}
}

// clock is a settable wall clock for the queue.
type clock struct{ ms atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ms.Store(time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC).UnixMilli())
	return c
}
func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }
func (c *clock) queue(r redis.UniversalClient, sla SLA) *Queue {
	return New(r, Options{Prefix: "cx", SLA: sla, Now: c.Now})
}

func claimAll(t *testing.T, q *Queue, agent string) []string {
	t.Helper()
	var order []string
	for {
		it, err := q.Claim(context.Background(), ClaimOptions{Agent: agent, Lease: time.Minute})
		if errors.Is(err, ErrEmpty) {
			return order
		}
		testenv.Must(t, err, "claim")
		order = append(order, it.ConversationID+":"+string(it.Priority))
	}
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
	items, err := q.List(ctx, 10)
	testenv.Must(t, err, "list")
	if len(items) != 3 || items[0].Alert.EventTime != 4000 {
		t.Fatalf("list %+v: want 3 items, a1 holding its latest alert", items)
	}
	want := "a1:URGENT b1:HIGH c1:NORMAL"
	if got := strings.Join(claimAll(t, q, "ana"), " "); got != want {
		t.Fatalf("claim order %q, want %q", got, want)
	}
}

func TestQueueLifecycle(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClock()
	q := c.queue(r.Client, nil)
	ctx := context.Background()
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{alert("u1", "c1", schemas.PriorityHigh, 1000), alert("u2", "c2", schemas.PriorityLow, 900)}), "push")
	c.Advance(90 * time.Second)

	it, err := q.Claim(ctx, ClaimOptions{Agent: "ana", Lease: 5 * time.Minute})
	testenv.Must(t, err, "claim")
	if it.ConversationID != "c1" || it.UserID != "u1" || it.Claim == nil || it.Claim.Agent != "ana" ||
		!it.Claim.ExpiresAt.Equal(c.Now().Add(5*time.Minute)) || it.WaitingSeconds != 90 {
		t.Fatalf("claimed %+v (claim %+v)", it, it.Claim)
	}
	// Nobody else can take, extend, resolve or release it.
	if _, err := q.Claim(ctx, ClaimOptions{Agent: "bob", Lease: time.Minute, Conversation: "c1"}); !errors.Is(err, ErrClaimed) {
		t.Fatalf("bob claimed ana's conversation: %v", err)
	}
	var ce *ClaimedError
	if _, err := q.Resolve(ctx, "c1", "bob", "resolved"); !errors.As(err, &ce) || ce.Agent != "ana" {
		t.Fatalf("bob resolved ana's conversation: %v", err)
	}
	if _, err := q.Release(ctx, "c1", "bob"); !errors.Is(err, ErrClaimed) {
		t.Fatalf("bob released ana's conversation: %v", err)
	}
	if _, err := q.Extend(ctx, "c1", "ana", 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a zero lease was accepted: %v", err)
	}
	if _, err := q.Resolve(ctx, "c1", "ana", "Not An Outcome"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a bad outcome was accepted: %v", err)
	}
	// Extend, then the most urgent left for bob is c2.
	c.Advance(4 * time.Minute)
	it, err = q.Extend(ctx, "c1", "ana", 5*time.Minute)
	testenv.Must(t, err, "extend")
	if !it.Claim.ExpiresAt.Equal(c.Now().Add(5 * time.Minute)) {
		t.Fatalf("extended lease ends %v", it.Claim.ExpiresAt)
	}
	c.Advance(2 * time.Minute) // past the first lease, within the extension
	it2, err := q.Claim(ctx, ClaimOptions{Agent: "bob", Lease: time.Minute})
	testenv.Must(t, err, "bob claims")
	if it2.ConversationID != "c2" {
		t.Fatalf("bob got %s, want c2 (c1 is ana's)", it2.ConversationID)
	}
	// bob releases c2: it is waiting again, in its place.
	_, err = q.Release(ctx, "c2", "bob")
	testenv.Must(t, err, "release")
	got, err := q.Get(ctx, "c2")
	testenv.Must(t, err, "get")
	if got.Claim != nil || got.Priority != schemas.PriorityLow {
		t.Fatalf("released item %+v", got)
	}
	// ana resolves c1; a replay of its alerts does not bring it back, a
	// newer negative message does.
	_, err = q.Resolve(ctx, "c1", "ana", "refunded")
	testenv.Must(t, err, "resolve")
	if _, err := q.Get(ctx, "c1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolved item still open: %v", err)
	}
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{alert("u1", "c1", schemas.PriorityHigh, 1000)}), "replay")
	if _, err := q.Get(ctx, "c1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a replayed alert reopened a resolved conversation: %v", err)
	}
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{alert("u1", "c1", schemas.PriorityNormal, 5000)}), "new alert")
	if got, err := q.Get(ctx, "c1"); err != nil || got.Claim != nil || got.Priority != schemas.PriorityNormal {
		t.Fatalf("a newer alert did not reopen the conversation: %+v %v", got, err)
	}
	// remove takes it out whoever holds it.
	_, err = q.Claim(ctx, ClaimOptions{Agent: "bob", Lease: time.Minute, Conversation: "c1"})
	testenv.Must(t, err, "claim c1")
	_, err = q.RemoveConversation(ctx, "c1")
	testenv.Must(t, err, "remove")
	if _, err := q.Resolve(ctx, "c1", "bob", "resolved"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("resolve after remove: %v", err)
	}
	if _, err := q.Claim(ctx, ClaimOptions{Agent: "bob", Lease: time.Minute, Conversation: "nope"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("claim of an unknown conversation: %v", err)
	}
}

func TestExpiredLeaseReturnsTheItemInItsPlace(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClock()
	q := c.queue(r.Client, nil)
	ctx := context.Background()
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{
		alert("u1", "c1", schemas.PriorityHigh, 1000),
		alert("u2", "c2", schemas.PriorityHigh, 2000),
		alert("u3", "c3", schemas.PriorityNormal, 500),
	}), "push")
	it, err := q.Claim(ctx, ClaimOptions{Agent: "crashy", Lease: 30 * time.Second})
	testenv.Must(t, err, "claim")
	if it.ConversationID != "c1" {
		t.Fatalf("claimed %s", it.ConversationID)
	}
	enqueued := it.EnqueuedAt
	c.Advance(29 * time.Second)
	if st, _ := q.Stats(ctx); st.Waiting != 2 || st.Claimed != 1 {
		t.Fatalf("before expiry: %+v", st)
	}
	c.Advance(2 * time.Second)
	// The crashed agent's lease is over: the next claim gets c1 again,
	// ahead of the younger c2, with its priority and age.
	st, err := q.Stats(ctx)
	testenv.Must(t, err, "stats")
	if st.Waiting != 3 || st.Claimed != 0 || st.OldestWaiting != 31*time.Second {
		t.Fatalf("after expiry: %+v", st)
	}
	if _, err := q.Resolve(ctx, "c1", "crashy", "resolved"); !errors.Is(err, ErrNotClaimed) {
		t.Fatalf("the expired claimant resolved: %v", err)
	}
	it, err = q.Claim(ctx, ClaimOptions{Agent: "bob", Lease: time.Minute})
	testenv.Must(t, err, "claim again")
	if it.ConversationID != "c1" || it.Priority != schemas.PriorityHigh || !it.EnqueuedAt.Equal(enqueued) || it.WaitingSeconds != 31 {
		t.Fatalf("after expiry bob got %+v", it)
	}
}

func TestConcurrentClaimsNeverShareAnItem(t *testing.T) {
	r := testenv.StartRedis(t)
	q := NewQueue(r.Client, "cx")
	ctx := context.Background()
	var alerts []*schemas.Alert
	for i := range 200 {
		alerts = append(alerts, alert(fmt.Sprintf("u%d", i), fmt.Sprintf("c%d", i), schemas.PriorityFromRank(i%4), int64(1000+i)))
	}
	testenv.Must(t, q.Push(ctx, alerts), "push")
	var (
		mu    sync.Mutex
		owner = map[string]string{}
		wg    sync.WaitGroup
		errs  = make(chan error, 8)
	)
	for a := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agent := fmt.Sprintf("agent%d", a)
			for {
				it, err := q.Claim(ctx, ClaimOptions{Agent: agent, Lease: time.Hour})
				if errors.Is(err, ErrEmpty) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if prev, dup := owner[it.ConversationID]; dup {
					errs <- fmt.Errorf("%s claimed by %s and %s", it.ConversationID, prev, agent)
				}
				owner[it.ConversationID] = agent
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(owner) != 200 {
		t.Fatalf("%d conversations claimed, want 200", len(owner))
	}
}

func TestSLABreachPromotesOnceAndRetriesUnacknowledged(t *testing.T) {
	r := testenv.StartRedis(t)
	c := newClock()
	q := c.queue(r.Client, SLA{schemas.PriorityHigh: 10 * time.Minute, schemas.PriorityNormal: time.Hour})
	ctx := context.Background()
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{
		alert("u1", "c1", schemas.PriorityNormal, 1000),
		alert("u2", "c2", schemas.PriorityHigh, 1000),
		alert("u3", "c3", schemas.PriorityHigh, 1000),
		alert("u4", "c4", schemas.PriorityLow, 1000), // no target
	}), "push")
	start := c.Now()
	// c3 is claimed in time: its SLA is met even if it comes back later.
	_, err := q.Claim(ctx, ClaimOptions{Agent: "ana", Lease: time.Minute, Conversation: "c3"})
	testenv.Must(t, err, "claim")
	// c1 escalates to HIGH after 5 minutes: its deadline tightens to
	// entry + 10m.
	c.Advance(5 * time.Minute)
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{alert("u1", "c1", schemas.PriorityHigh, 2000)}), "escalate")
	got, _ := q.Get(ctx, "c1")
	if got.SLADeadline == nil || !got.SLADeadline.Equal(start.Add(10*time.Minute)) {
		t.Fatalf("c1 deadline %v, want %v", got.SLADeadline, start.Add(10*time.Minute))
	}
	c.Advance(4 * time.Minute)
	if b, err := q.TakeBreaches(ctx, 100, time.Minute); err != nil || len(b) != 0 {
		t.Fatalf("breaches before any deadline: %v %v", b, err)
	}
	c.Advance(2 * time.Minute)
	b, err := q.TakeBreaches(ctx, 100, time.Minute)
	testenv.Must(t, err, "take")
	var convs []string
	for _, x := range b {
		convs = append(convs, x.ConversationID+":"+string(x.Priority))
		if !x.SLABreached {
			t.Errorf("%s not marked breached", x.ConversationID)
		}
	}
	if strings.Join(convs, " ") != "c1:URGENT c2:URGENT" && strings.Join(convs, " ") != "c2:URGENT c1:URGENT" {
		t.Fatalf("breaches %v, want c1 and c2 promoted to URGENT", convs)
	}
	// Acknowledge c1 only: c2's publisher "crashed"; it is handed out again
	// after the retry time, c1 never again.
	for _, x := range b {
		if x.ConversationID == "c1" {
			testenv.Must(t, q.AckBreach(ctx, x), "ack")
		}
	}
	if b, _ := q.TakeBreaches(ctx, 100, time.Minute); len(b) != 0 {
		t.Fatalf("breaches taken twice: %+v", b)
	}
	c.Advance(61 * time.Second)
	b, _ = q.TakeBreaches(ctx, 100, time.Minute)
	if len(b) != 1 || b[0].ConversationID != "c2" {
		t.Fatalf("unacknowledged breach not retried: %+v", b)
	}
	testenv.Must(t, q.AckBreach(ctx, b[0]), "ack")
	c.Advance(10 * time.Hour)
	if b, _ := q.TakeBreaches(ctx, 100, time.Minute); len(b) != 0 {
		t.Fatalf("breaches after acks: %+v", b)
	}
	// c3 came back after its lease; it was claimed in time and has not
	// breached.
	if got, _ := q.Get(ctx, "c3"); got.Claim != nil || got.SLABreached {
		t.Fatalf("c3 %+v", got)
	}
}

func TestQueueRemoveErasesAUser(t *testing.T) {
	r := testenv.StartRedis(t)
	q := NewQueue(r.Client, "cx")
	ctx := context.Background()
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{alert("u*1", "x", schemas.PriorityLow, 1), alert("u*1", "y", schemas.PriorityHigh, 2), alert("u*1", "w", schemas.PriorityLow, 2), alert("u*12", "z", schemas.PriorityLow, 3)}), "push")
	_, err := q.Claim(ctx, ClaimOptions{Agent: "ana", Lease: time.Minute, Conversation: "y"})
	testenv.Must(t, err, "claim")
	_, err = q.RemoveConversation(ctx, "w") // leaves a resolution marker
	testenv.Must(t, err, "remove w")
	n, err := q.Remove(ctx, "u*1")
	testenv.Must(t, err, "remove")
	left, _ := q.List(ctx, 10)
	if n != 2 || len(left) != 1 || left[0].UserID != "u*12" {
		t.Fatalf("removed %d, left %+v", n, left)
	}
	// Nothing of the user is left in any of the queue's keys.
	for _, k := range q.Keys() {
		var fields []string
		switch r.Client.Type(ctx, k).Val() {
		case "zset":
			fields = r.Client.ZRange(ctx, k, 0, -1).Val()
		case "hash":
			for f, v := range r.Client.HGetAll(ctx, k).Val() {
				fields = append(fields, f, v)
			}
		}
		for _, f := range fields {
			if strings.HasPrefix(f, "u*1\x00") {
				t.Errorf("%s still holds %q", k, f)
			}
		}
	}
}

func TestQueueOnRedisCluster(t *testing.T) {
	rc := testenv.StartRedisCluster(t, 3)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs})
	defer cc.Close()
	c := newClock()
	q := c.queue(cc, SLA{schemas.PriorityHigh: time.Minute})
	ctx := context.Background()
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{alert("u1", "c1", schemas.PriorityHigh, 1), alert("u2", "c2", schemas.PriorityHigh, 2)}), "push")
	it, err := q.Claim(ctx, ClaimOptions{Agent: "ana", Lease: time.Minute})
	testenv.Must(t, err, "claim")
	_, err = q.Resolve(ctx, it.ConversationID, "ana", "resolved")
	testenv.Must(t, err, "resolve")
	c.Advance(2 * time.Minute)
	b, err := q.TakeBreaches(ctx, 10, time.Minute)
	testenv.Must(t, err, "breach")
	if len(b) != 1 || b[0].ConversationID != "c2" {
		t.Fatalf("breaches %+v", b)
	}
	n, err := q.Remove(ctx, "u2")
	if err != nil || n != 1 {
		t.Fatalf("erase on cluster: %d %v", n, err)
	}
}

// A queue item shows the customer's segment the alert carries.
func TestQueueItemShowsTheSegment(t *testing.T) {
	r := testenv.StartRedis(t)
	q := NewQueue(r.Client, "cx")
	ctx := context.Background()
	vip := alert("v", "v1", schemas.PriorityHigh, 1000)
	vip.Segment = "high_value"
	testenv.Must(t, q.Push(ctx, []*schemas.Alert{vip, alert("n", "n1", schemas.PriorityNormal, 500)}), "push")
	items, err := q.List(ctx, 10)
	testenv.Must(t, err, "list")
	if len(items) != 2 || items[0].ConversationID != "v1" || items[0].Segment != "high_value" || items[1].Segment != "" {
		t.Fatalf("items %+v, want v1 first showing high_value, n1 without a segment", items)
	}
}
