// Package alertsink holds the places alerts go besides their Kafka topic:
// the live support priority queue in Redis that agents work, with leases,
// first-response SLAs and erasure.
package alertsink

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cxstream/cxstream/schemas"
)

// Errors of queue operations. Callers test them with errors.Is.
var (
	// ErrEmpty: no conversation is waiting.
	ErrEmpty = errors.New("the queue is empty")
	// ErrNotFound: no open item for this conversation.
	ErrNotFound = errors.New("no such conversation in the queue")
	// ErrNotClaimed: the item is not claimed by this agent (never was, or
	// its lease expired and it went back to the queue).
	ErrNotClaimed = errors.New("not claimed by this agent (the lease may have expired)")
	// ErrClaimed: another agent holds the item.
	ErrClaimed = errors.New("claimed by another agent")
	// ErrInvalid: a bad argument (agent id, lease, outcome).
	ErrInvalid = errors.New("invalid queue request")
)

// ClaimedError says who holds an item; it matches ErrClaimed.
type ClaimedError struct{ Agent string }

func (e *ClaimedError) Error() string        { return fmt.Sprintf("claimed by agent %q", e.Agent) }
func (e *ClaimedError) Is(target error) bool { return target == ErrClaimed }

// SLA is the first-response target per priority: how long a conversation
// may wait for its first claim. A missing priority has no target.
type SLA map[schemas.Priority]time.Duration

// Options configure a Queue.
type Options struct {
	// Prefix of the Redis keys (default "cx").
	Prefix string
	// SLA targets, applied when a conversation enters the queue or is
	// escalated.
	SLA SLA
	// Now, when set, replaces the Redis server's clock (tests). Without
	// it every lease and deadline is judged by the one Redis clock, so
	// agents on machines with skewed clocks agree.
	Now func() time.Time
}

// Queue is the support priority queue: one item per conversation, ordered
// by priority and then by age (oldest first). An escalation raises the
// item; it never lowers it. An agent claims an item with a lease, then
// extends, resolves or releases it; an expired lease puts the item back
// where it was. Every key shares the {queue} hash tag, so each operation
// is one Lua script, atomic on Redis Cluster too, and every operation
// first returns expired leases: no reaper process needs to run.
//
//	<prefix>:{queue}            sorted set of waiting items, score = rank*1e13 + (1e13 - event time)
//	<prefix>:{queue}:items      hash item -> the latest alert JSON (waiting and claimed items)
//	<prefix>:{queue}:evt        hash item -> event time of that alert
//	<prefix>:{queue}:since      sorted set item -> when it entered the queue (wall clock, ms)
//	<prefix>:{queue}:deadline   hash item -> first-response deadline (ms)
//	<prefix>:{queue}:slaq       sorted set item -> deadline, items whose SLA is still running
//	<prefix>:{queue}:breached   hash item -> when it breached (the once-only flag)
//	<prefix>:{queue}:slaout     sorted set item -> retry time of an sla_breach alert not yet acknowledged
//	<prefix>:{queue}:claims     hash item -> agent
//	<prefix>:{queue}:leases     sorted set item -> lease expiry (ms)
//	<prefix>:{queue}:claimedat  hash item -> claim time (ms)
//	<prefix>:{queue}:saved      hash item -> its waiting score while claimed
//	<prefix>:{queue}:done       sorted set item -> when it was resolved; evt keeps the event time it covered (a replay does not reopen it)
//	<prefix>:{queue}:convs      hash conversation -> item
//
// An item's member is "<user>\x00<conversation>".
type Queue struct {
	rdb  redis.UniversalClient
	keys []string
	o    Options
}

// Key indices, in the order of Queue.keys (KEYS[i+1] in the scripts).
const (
	kWaiting = iota
	kItems
	kEvt
	kSince
	kDeadline
	kSLAQ
	kBreached
	kSLAOut
	kClaims
	kLeases
	kClaimedAt
	kSaved
	kDone
	kConvs
	nKeys
)

// NewQueue returns the queue under prefix with no SLA targets.
func NewQueue(rdb redis.UniversalClient, prefix string) *Queue {
	return New(rdb, Options{Prefix: prefix})
}

// New returns the queue configured by o.
func New(rdb redis.UniversalClient, o Options) *Queue {
	if o.Prefix == "" {
		o.Prefix = "cx"
	}
	base := o.Prefix + ":{queue}"
	keys := make([]string, nKeys)
	keys[kWaiting] = base
	for i, name := range []string{kItems: "items", kEvt: "evt", kSince: "since", kDeadline: "deadline", kSLAQ: "slaq", kBreached: "breached", kSLAOut: "slaout", kClaims: "claims", kLeases: "leases", kClaimedAt: "claimedat", kSaved: "saved", kDone: "done", kConvs: "convs"} {
		if name != "" {
			keys[i] = base + ":" + name
		}
	}
	return &Queue{rdb: rdb, keys: keys, o: o}
}

// Keys are the Redis keys of the queue (all in one hash slot).
func (q *Queue) Keys() []string { return append([]string(nil), q.keys...) }

// Ages fit below 1e13 ms (year 2286), so rank dominates and, within a rank,
// the oldest event scores highest.
const rankScale = 1e13

func score(a schemas.Alert) float64 {
	return float64(a.Priority.Rank())*rankScale + (rankScale - float64(a.EventTime))
}

func member(user, conversation string) string { return user + "\x00" + conversation }

func splitMember(m string) (user, conversation string) {
	user, conversation, _ = strings.Cut(m, "\x00")
	return user, conversation
}

// now is the clock argument of every script: "" lets the script read the
// Redis server's TIME.
func (q *Queue) now() string {
	if q.o.Now == nil {
		return ""
	}
	return strconv.FormatInt(q.o.Now().UnixMilli(), 10)
}

func (q *Queue) target(p schemas.Priority) int64 {
	return q.o.SLA[p].Milliseconds()
}

// Push adds or escalates the conversations of negative-chat alerts, in one
// round trip. Pushing the same alert again changes nothing, and an alert
// no newer than a conversation's resolution does not reopen it, so a
// replay after a crash leaves the queue as it was.
func (q *Queue) Push(ctx context.Context, alerts []*schemas.Alert) error {
	type push struct {
		args []any
	}
	var pushes []push
	for _, a := range alerts {
		if a.Type != schemas.AlertNegativeChat {
			continue
		}
		body, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("queue: %w", err)
		}
		pushes = append(pushes, push{[]any{q.now(), member(a.UserID, a.ConversationID), a.ConversationID,
			strconv.FormatFloat(score(*a), 'f', -1, 64), a.EventTime, body, q.target(a.Priority)}})
	}
	if len(pushes) == 0 {
		return nil
	}
	exec := func() error {
		pipe := q.rdb.Pipeline()
		for _, p := range pushes {
			pipe.EvalSha(ctx, pushScript.Hash(), q.keys, p.args...)
		}
		_, err := pipe.Exec(ctx)
		return err
	}
	err := exec()
	if isNoScript(err) {
		// First use on this server: load the script and push again
		// (pushing is idempotent).
		if err = pushScript.Load(ctx, q.rdb).Err(); err == nil {
			err = exec()
		}
	}
	if err != nil {
		return fmt.Errorf("queue push: %w", err)
	}
	return nil
}

func isNoScript(err error) bool { return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") }

// Item is one conversation in the queue.
type Item struct {
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	// Priority is the current one: the alert's, raised by escalations and
	// by an SLA breach.
	Priority schemas.Priority `json:"priority"`
	// Alert is the latest alert of the conversation (redacted excerpt).
	Alert schemas.Alert `json:"alert"`
	// Segment is the customer's segment when the alert was raised
	// (empty when unknown); high-value customers' alerts rank higher
	// (sentiment.segment_priority).
	Segment string `json:"segment,omitempty"`
	// EnqueuedAt is when the conversation entered the queue (wall clock).
	EnqueuedAt time.Time `json:"enqueued_at"`
	// WaitingSeconds is how long it has been in the queue.
	WaitingSeconds float64 `json:"waiting_seconds"`
	// SLADeadline is its first-response deadline (absent without a target).
	SLADeadline *time.Time `json:"sla_deadline,omitempty"`
	// SLABreached: it waited past the deadline (and was promoted).
	SLABreached bool `json:"sla_breached"`
	// SLAMet: an agent claimed it before the deadline (the first
	// response); its SLA clock has stopped.
	SLAMet bool `json:"sla_met"`
	// Claim is who holds it, absent while it waits.
	Claim *Claim `json:"claim,omitempty"`

	score float64
}

// Claim is an agent's lease on an item.
type Claim struct {
	Agent     string    `json:"agent"`
	ClaimedAt time.Time `json:"claimed_at"`
	ExpiresAt time.Time `json:"lease_expires_at"`
}

// view fields, as returned by the scripts' view(m).
func (q *Queue) parseView(now int64, v any) (Item, error) {
	f, ok := v.([]any)
	if !ok || len(f) < 10 {
		return Item{}, fmt.Errorf("queue: unexpected script reply %T", v)
	}
	s := func(i int) string { x, _ := f[i].(string); return x }
	n := func(i int) int64 { x, _ := strconv.ParseFloat(s(i), 64); return int64(x) }
	var it Item
	it.UserID, it.ConversationID = splitMember(s(0))
	if err := json.Unmarshal([]byte(s(1)), &it.Alert); err != nil {
		return Item{}, fmt.Errorf("queue: item body: %w", err)
	}
	it.Segment = it.Alert.Segment
	it.score, _ = strconv.ParseFloat(s(8), 64)
	it.Priority = schemas.PriorityFromRank(int(it.score / rankScale))
	if it.score == 0 {
		it.Priority = it.Alert.Priority
	}
	since := n(2)
	if since == 0 { // pushed before the queue kept entry times
		since = it.Alert.DetectedAt
	}
	it.EnqueuedAt = time.UnixMilli(since).UTC()
	it.WaitingSeconds = max(0, float64(now-since)/1000)
	if d := n(3); d > 0 {
		t := time.UnixMilli(d).UTC()
		it.SLADeadline = &t
	}
	it.SLABreached = s(4) != ""
	it.SLAMet = it.SLADeadline != nil && !it.SLABreached && s(9) == ""
	if agent := s(5); agent != "" {
		it.Claim = &Claim{Agent: agent, ClaimedAt: time.UnixMilli(n(6)).UTC(), ExpiresAt: time.UnixMilli(n(7)).UTC()}
	}
	return it, nil
}

// reply splits a script's {status, now, ...} reply.
func reply(v any) (status string, now int64, rest []any, err error) {
	f, ok := v.([]any)
	if !ok || len(f) < 2 {
		return "", 0, nil, fmt.Errorf("queue: unexpected script reply %v", v)
	}
	status, _ = f[0].(string)
	now, _ = f[1].(int64)
	return status, now, f[2:], nil
}

func statusErr(status string, rest []any) error {
	switch status {
	case "ok":
		return nil
	case "empty":
		return ErrEmpty
	case "not_found":
		return ErrNotFound
	case "not_claimed":
		return ErrNotClaimed
	case "claimed":
		agent := ""
		if len(rest) > 0 {
			agent, _ = rest[0].(string)
		}
		return &ClaimedError{Agent: agent}
	}
	return fmt.Errorf("queue: unexpected status %q", status)
}

func (q *Queue) run(ctx context.Context, s *redis.Script, args ...any) (status string, now int64, rest []any, err error) {
	v, err := s.Run(ctx, q.rdb, q.keys, append([]any{q.now()}, args...)...).Result()
	if err != nil {
		return "", 0, nil, err
	}
	return reply(v)
}

// List returns up to n items, waiting and claimed, most urgent first (a
// claimed item sits where it would wait), after returning expired leases.
func (q *Queue) List(ctx context.Context, n int) ([]Item, error) {
	if n <= 0 {
		return nil, nil
	}
	_, now, rest, err := q.run(ctx, listScript, n)
	if err != nil {
		return nil, fmt.Errorf("queue list: %w", err)
	}
	out := make([]Item, 0, len(rest))
	for _, v := range rest {
		it, err := q.parseView(now, v)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].score > out[j].score })
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// Get returns a conversation's item; ErrNotFound when it is not open.
func (q *Queue) Get(ctx context.Context, conversation string) (Item, error) {
	status, now, rest, err := q.run(ctx, getScript, conversation)
	if err != nil {
		return Item{}, fmt.Errorf("queue get: %w", err)
	}
	if err := statusErr(status, rest); err != nil {
		return Item{}, err
	}
	return q.parseView(now, rest[0])
}

// ForUser returns the user's open items with their position among the
// waiting ones (1 = next to be claimed; 0 while claimed).
func (q *Queue) ForUser(ctx context.Context, userID string) ([]UserItem, error) {
	members, err := q.scanUser(ctx, userID, false)
	if err != nil {
		return nil, err
	}
	var out []UserItem
	for _, m := range members {
		_, conv := splitMember(m)
		it, err := q.Get(ctx, conv)
		if errors.Is(err, ErrNotFound) || (err == nil && it.UserID != userID) {
			continue
		}
		if err != nil {
			return nil, err
		}
		ui := UserItem{Item: it}
		if it.Claim == nil {
			rank, err := q.rdb.ZRevRank(ctx, q.keys[kWaiting], m).Result()
			if err == nil {
				ui.Position = int(rank) + 1
			}
		}
		out = append(out, ui)
	}
	return out, nil
}

// UserItem is an item with its place in the queue.
type UserItem struct {
	Item
	// Position among the waiting items, 1 = next; 0 while claimed.
	Position int `json:"position"`
}

// ClaimOptions say who claims, for how long, and optionally which
// conversation (empty: the most urgent waiting one).
type ClaimOptions struct {
	Agent        string
	Lease        time.Duration
	Conversation string
}

// MaxLease bounds a lease, so a forgotten claim cannot hold an item for
// days.
const MaxLease = 24 * time.Hour

var agentRE = regexp.MustCompile(`^[A-Za-z0-9._@+-]{1,64}$`)

func checkAgent(agent string) error {
	if !agentRE.MatchString(agent) {
		return fmt.Errorf("%w: agent id must be 1-64 letters, digits or ._@+-, got %q", ErrInvalid, agent)
	}
	return nil
}

func checkLease(d time.Duration) error {
	if d < time.Millisecond || d > MaxLease {
		return fmt.Errorf("%w: lease must be between 1ms and %s, got %s", ErrInvalid, MaxLease, d)
	}
	return nil
}

// Claim gives the agent the most urgent waiting item (or the named
// conversation) for the lease. Two agents never hold the same item.
func (q *Queue) Claim(ctx context.Context, o ClaimOptions) (Item, error) {
	if err := checkAgent(o.Agent); err != nil {
		return Item{}, err
	}
	if err := checkLease(o.Lease); err != nil {
		return Item{}, err
	}
	status, now, rest, err := q.run(ctx, claimScript, o.Agent, o.Lease.Milliseconds(), o.Conversation)
	if err != nil {
		return Item{}, fmt.Errorf("queue claim: %w", err)
	}
	if err := statusErr(status, rest); err != nil {
		return Item{}, err
	}
	return q.parseView(now, rest[0])
}

// Extend renews the agent's lease on a conversation to lease from now.
func (q *Queue) Extend(ctx context.Context, conversation, agent string, lease time.Duration) (Item, error) {
	if err := checkAgent(agent); err != nil {
		return Item{}, err
	}
	if err := checkLease(lease); err != nil {
		return Item{}, err
	}
	status, now, rest, err := q.run(ctx, extendScript, conversation, agent, lease.Milliseconds())
	if err != nil {
		return Item{}, fmt.Errorf("queue extend: %w", err)
	}
	if err := statusErr(status, rest); err != nil {
		return Item{}, err
	}
	return q.parseView(now, rest[0])
}

// Release gives the agent's conversation back to the queue, in its
// original place.
func (q *Queue) Release(ctx context.Context, conversation, agent string) (Item, error) {
	if err := checkAgent(agent); err != nil {
		return Item{}, err
	}
	status, now, rest, err := q.run(ctx, releaseScript, conversation, agent)
	if err != nil {
		return Item{}, fmt.Errorf("queue release: %w", err)
	}
	if err := statusErr(status, rest); err != nil {
		return Item{}, err
	}
	return q.parseView(now, rest[0])
}

var outcomeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,39}$`)

// CheckOutcome accepts a short machine-readable outcome (e.g. resolved,
// refunded, no_action).
func CheckOutcome(outcome string) error {
	if !outcomeRE.MatchString(outcome) {
		return fmt.Errorf("%w: outcome must be 1-40 of a-z, 0-9, _ and -, got %q", ErrInvalid, outcome)
	}
	return nil
}

// Resolve closes the agent's conversation with an outcome. The item
// leaves the queue; alerts of the conversation no newer than the latest
// one it held do not bring it back (a replay), newer ones reopen it.
func (q *Queue) Resolve(ctx context.Context, conversation, agent, outcome string) (Item, error) {
	if err := checkAgent(agent); err != nil {
		return Item{}, err
	}
	if err := CheckOutcome(outcome); err != nil {
		return Item{}, err
	}
	status, now, rest, err := q.run(ctx, resolveScript, conversation, agent)
	if err != nil {
		return Item{}, fmt.Errorf("queue resolve: %w", err)
	}
	if err := statusErr(status, rest); err != nil {
		return Item{}, err
	}
	return q.parseView(now, rest[0])
}

// RemoveConversation takes a conversation out of the queue whoever holds
// it (an operator's or supervisor's action, e.g. spam).
func (q *Queue) RemoveConversation(ctx context.Context, conversation string) (Item, error) {
	status, now, rest, err := q.run(ctx, resolveScript, conversation, "")
	if err != nil {
		return Item{}, fmt.Errorf("queue remove: %w", err)
	}
	if err := statusErr(status, rest); err != nil {
		return Item{}, err
	}
	return q.parseView(now, rest[0])
}

// Len is the number of waiting conversations.
func (q *Queue) Len(ctx context.Context) (int64, error) {
	return q.rdb.ZCard(ctx, q.keys[kWaiting]).Result()
}

// Stats is the queue's size and the age of its oldest waiting item.
type Stats struct {
	Waiting, Claimed int64
	// OldestWaiting is how long the oldest waiting item has waited; 0
	// when none waits.
	OldestWaiting time.Duration
}

// Stats returns expired leases, then counts.
func (q *Queue) Stats(ctx context.Context) (Stats, error) {
	_, now, rest, err := q.run(ctx, statsScript)
	if err != nil {
		return Stats{}, fmt.Errorf("queue stats: %w", err)
	}
	var s Stats
	if len(rest) == 3 {
		s.Waiting, _ = rest[0].(int64)
		s.Claimed, _ = rest[1].(int64)
		if oldest, _ := rest[2].(int64); oldest > 0 {
			s.OldestWaiting = time.Duration(max(0, now-oldest)) * time.Millisecond
		}
	}
	return s, nil
}

// Remove deletes every item of a user, waiting, claimed or resolved
// (erasure); it returns how many open items it removed.
func (q *Queue) Remove(ctx context.Context, userID string) (int, error) {
	members, err := q.scanUser(ctx, userID, true)
	if err != nil {
		return 0, fmt.Errorf("queue remove: %w", err)
	}
	if len(members) == 0 {
		return 0, nil
	}
	args := make([]any, 0, 2*len(members))
	for _, m := range members {
		_, conv := splitMember(m)
		args = append(args, m, conv)
	}
	_, _, rest, err := q.run(ctx, eraseScript, args...)
	if err != nil {
		return 0, fmt.Errorf("queue remove: %w", err)
	}
	n := 0
	if len(rest) > 0 {
		v, _ := rest[0].(int64)
		n = int(v)
	}
	return n, nil
}

// scanUser lists the members of a user's open items (and, with done, its
// resolution markers).
func (q *Queue) scanUser(ctx context.Context, userID string, done bool) ([]string, error) {
	pattern := escapeGlob(userID) + "\x00*"
	seen := map[string]bool{}
	var out []string
	add := func(m string) {
		if strings.HasPrefix(m, userID+"\x00") && !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	it := q.rdb.HScan(ctx, q.keys[kItems], 0, pattern, 200).Iterator()
	for it.Next(ctx) {
		add(it.Val())
		_ = it.Next(ctx) // HSCAN yields field, value pairs
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	// Items pushed before the queue kept the items hash complete still sit
	// in the waiting set.
	it = q.rdb.ZScan(ctx, q.keys[kWaiting], 0, pattern, 200).Iterator()
	for it.Next(ctx) {
		add(it.Val())
		_ = it.Next(ctx)
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	if done {
		it = q.rdb.ZScan(ctx, q.keys[kDone], 0, pattern, 200).Iterator()
		for it.Next(ctx) {
			add(it.Val())
			_ = it.Next(ctx)
		}
		if err := it.Err(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Breach is an item that waited past its first-response deadline, taken
// for publishing its sla_breach alert.
type Breach struct {
	Item
	// member identifies the item for Ack.
	member string
}

// TakeBreaches finds up to limit items whose deadline has passed while
// they waited, marks each breached exactly once (a Redis flag), promotes it
// one priority, and returns it for its alert. A breach taken but not
// acknowledged within retry (its publisher died) is returned again, so
// the alert is published at least once and, barring such a crash,
// exactly once, whichever processes run the check.
func (q *Queue) TakeBreaches(ctx context.Context, limit int, retry time.Duration) ([]Breach, error) {
	_, now, rest, err := q.run(ctx, breachScript, limit, retry.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("queue sla: %w", err)
	}
	out := make([]Breach, 0, len(rest))
	for _, v := range rest {
		it, err := q.parseView(now, v)
		if err != nil {
			return nil, err
		}
		out = append(out, Breach{Item: it, member: member(it.UserID, it.ConversationID)})
	}
	return out, nil
}

// AckBreach records that a breach's alert was published.
func (q *Queue) AckBreach(ctx context.Context, b Breach) error {
	if _, _, _, err := q.run(ctx, ackScript, b.member); err != nil {
		return fmt.Errorf("queue sla ack: %w", err)
	}
	return nil
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)
	return r.Replace(s)
}
