// Package userview turns a user's state documents and queue items into
// what an agent reads: funnel positions, purchases, churn score and its
// reasons, conversation sentiment and the queue, in the documented
// user-view.v1 form (schemas/user-view.v1.json), never the storage
// encoding.
package userview

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
)

// SchemaV1 is the value of View.Schema.
const SchemaV1 = "user-view.v1"

// ErrNoUser: neither state nor queue items exist for the user.
var ErrNoUser = errors.New("no state for this user")

// View is user-view.v1.
type View struct {
	Schema      string    `json:"schema"`
	UserID      string    `json:"user_id"`
	GeneratedAt time.Time `json:"generated_at"`
	// Activity is when the user was first and last seen (event time).
	Activity  Activity         `json:"activity"`
	Funnels   []FunnelPosition `json:"funnels"`
	Purchases Purchases        `json:"purchases"`
	Churn     Churn            `json:"churn"`
	Sentiment Sentiment        `json:"sentiment"`
	Queue     []QueueEntry     `json:"queue"`
	// Segment is absent while the segment processor is off or the user
	// has no click yet.
	Segment *Segment `json:"segment,omitempty"`
}

// Segment is the customer's segment as of their latest click or timer
// (event time), with the latest changes.
type Segment struct {
	Name  string     `json:"name"`
	Since *time.Time `json:"since,omitempty"`
	// Changes are the latest changes the state keeps, latest first.
	Changes []SegmentChange `json:"changes"`
}

// SegmentChange is one change of segment ("" from: the first).
type SegmentChange struct {
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
}

// Activity is the user's first and last events and lifecycle.
type Activity struct {
	FirstSeen *time.Time `json:"first_seen,omitempty"`
	LastSeen  *time.Time `json:"last_seen,omitempty"`
	// Lifecycle: new, current, dormant or resurrected ("" when unknown).
	Lifecycle string `json:"lifecycle"`
}

// FunnelPosition is where the user stands in one funnel.
type FunnelPosition struct {
	Funnel string `json:"funnel"`
	// Step is the furthest step reached in the open attempt (0-based),
	// -1 when no attempt is open.
	Step int `json:"step"`
	// StepName is that step's name ("" when none is open).
	StepName string `json:"step_name"`
	// Since is when the user reached it.
	Since *time.Time `json:"since,omitempty"`
	// EnteredAt is when the open attempt began.
	EnteredAt    *time.Time `json:"entered_at,omitempty"`
	Steps        int        `json:"steps"`
	Conversions  int        `json:"conversions"`
	Abandonments int        `json:"abandonments"`
}

// Purchases sums the user's purchases.
type Purchases struct {
	Count int     `json:"count"`
	Spend float64 `json:"spend"`
	// Currency of Spend (configured: the state sums amounts as sent).
	Currency string     `json:"currency"`
	LastAt   *time.Time `json:"last_at,omitempty"`
}

// Churn is the churn-risk score as of the view's time, with its reasons.
type Churn struct {
	// Score in [0, 1] now (wall clock: inactivity counts until now).
	Score     float64 `json:"score"`
	Threshold float64 `json:"threshold"`
	// LastScore is the score when the processor last evaluated the user.
	LastScore float64 `json:"last_score"`
	// Reasons are the top contributions that raise the score.
	Reasons []string `json:"reasons"`
	// Features are the model's inputs.
	Features map[string]float64 `json:"features"`
}

// Sentiment is the rolling chat sentiment, overall and per conversation.
type Sentiment struct {
	// Rolling is the user's decayed mean in [-1, 1].
	Rolling  float64 `json:"rolling"`
	Messages int64   `json:"messages"`
	// Conversations are those the state still keeps (idle ones are
	// forgotten after sentiment.conversation_ttl), latest first.
	Conversations []Conversation `json:"conversations"`
	// NegativeMessages are the times of recent negative customer
	// messages (message text is never stored; the queue entries carry
	// a redacted excerpt).
	NegativeMessages []time.Time `json:"negative_messages"`
	// SupportContacts are the times of recent contacts.
	SupportContacts []time.Time `json:"support_contacts"`
}

// Conversation is one conversation's rolling sentiment.
type Conversation struct {
	ID        string    `json:"conversation_id"`
	Rolling   float64   `json:"rolling"`
	Messages  int       `json:"messages"`
	Negatives int       `json:"negatives"`
	StartedAt time.Time `json:"started_at"`
	LastAt    time.Time `json:"last_at"`
	// Recent are the latest message scores, oldest first.
	Recent []float64 `json:"recent"`
}

// QueueEntry is one of the user's open support-queue items.
type QueueEntry struct {
	ConversationID string   `json:"conversation_id"`
	Priority       string   `json:"priority"`
	Reasons        []string `json:"reasons"`
	// Excerpt is the redacted excerpt of the latest negative message.
	Excerpt string `json:"excerpt"`
	// Position among waiting items (1 = next); 0 while claimed.
	Position       int        `json:"position"`
	WaitingSeconds float64    `json:"waiting_seconds"`
	SLADeadline    *time.Time `json:"sla_deadline,omitempty"`
	SLABreached    bool       `json:"sla_breached"`
	ClaimedBy      string     `json:"claimed_by,omitempty"`
	LeaseExpiresAt *time.Time `json:"lease_expires_at,omitempty"`
}

// Builder reads views.
type Builder struct {
	Store    *state.Store
	Queue    *alertsink.Queue
	Funnel   *funnel.Processor
	Churn    *churn.Processor
	ChurnCfg churn.Config
	Currency string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Build reads the user's documents and queue items; id is the stored id
// (the pseudonym when pseudonymisation is on).
func (b *Builder) Build(ctx context.Context, id string) (View, error) {
	now := time.Now()
	if b.Now != nil {
		now = b.Now()
	}
	docs, err := b.Store.Load(ctx, []string{id})
	if err != nil {
		return View{}, err
	}
	d := docs[id]
	items, err := b.Queue.ForUser(ctx, id)
	if err != nil {
		return View{}, err
	}
	if d.Click.Version == 0 && d.Chat.Version == 0 && len(items) == 0 {
		return View{}, ErrNoUser
	}
	click, err := pipeline.DecodeClick(d.Click.Data)
	if err != nil {
		return View{}, fmt.Errorf("click document: %w", err)
	}
	chat, err := pipeline.DecodeChat(d.Chat.Data)
	if err != nil {
		return View{}, fmt.Errorf("chat document: %w", err)
	}
	v := View{Schema: SchemaV1, UserID: id, GeneratedAt: now.UTC()}
	ch := &click.Churn
	v.Activity = Activity{FirstSeen: ms(ch.FirstSeen), LastSeen: ms(ch.LastSeen), Lifecycle: churn.Lifecycle(ch, now.UnixMilli())}
	v.Funnels = b.funnels(click.Funnel)
	if sg := click.Segment; sg.Segment != "" {
		v.Segment = &Segment{Name: sg.Segment, Since: ms(sg.Since), Changes: []SegmentChange{}}
		for _, c := range slices.Backward(sg.Recent) {
			v.Segment.Changes = append(v.Segment.Changes, SegmentChange{From: c.From, To: c.To, At: time.UnixMilli(c.At).UTC()})
		}
	}
	v.Purchases = Purchases{Count: ch.Purchases, Spend: round(ch.Spend, 2), Currency: b.Currency, LastAt: ms(ch.LastPurchase)}

	sig := churn.Signals{
		AbandonedAt: b.Funnel.AbandonedAt(click.Funnel),
		NegativeAt:  chat.Sentiment.NegativeAt,
		ContactAt:   chat.Sentiment.ContactAt,
		FunnelStage: b.Funnel.Stage(click.Funnel),
		Sentiment:   chat.Sentiment.User.Mean,
	}
	features := churn.Features(ch, sig, now.UnixMilli())
	score, contributions := b.Churn.Score(features)
	for k, f := range features {
		features[k] = round(f, 3)
	}
	v.Churn = Churn{Score: round(score, 3), Threshold: b.ChurnCfg.Threshold, LastScore: round(ch.LastScore, 3), Reasons: churn.Explain(contributions), Features: features}

	st := chat.Sentiment
	v.Sentiment = Sentiment{Rolling: round(st.User.Mean, 3), Messages: st.Messages, Conversations: []Conversation{}, NegativeMessages: times(st.NegativeAt), SupportContacts: times(st.ContactAt)}
	for id, c := range st.Conversations {
		v.Sentiment.Conversations = append(v.Sentiment.Conversations, Conversation{ID: id, Rolling: round(c.Rolling.Mean, 3), Messages: c.Rolling.Count,
			Negatives: c.Negatives, StartedAt: time.UnixMilli(c.StartedAt).UTC(), LastAt: time.UnixMilli(c.LastAt).UTC(), Recent: nonNil(c.Rolling.Recent)})
	}
	sort.Slice(v.Sentiment.Conversations, func(i, j int) bool {
		a, b := v.Sentiment.Conversations[i], v.Sentiment.Conversations[j]
		if !a.LastAt.Equal(b.LastAt) {
			return a.LastAt.After(b.LastAt)
		}
		return a.ID < b.ID
	})

	v.Queue = []QueueEntry{}
	for _, it := range items {
		e := QueueEntry{ConversationID: it.ConversationID, Priority: string(it.Priority), Reasons: nonNilS(it.Alert.ReasonTexts()), Excerpt: it.Alert.Excerpt,
			Position: it.Position, WaitingSeconds: round(it.WaitingSeconds, 3), SLADeadline: it.SLADeadline, SLABreached: it.SLABreached}
		if it.Claim != nil {
			e.ClaimedBy = it.Claim.Agent
			t := it.Claim.ExpiresAt
			e.LeaseExpiresAt = &t
		}
		v.Queue = append(v.Queue, e)
	}
	return v, nil
}

func (b *Builder) funnels(st funnel.State) []FunnelPosition {
	out := []FunnelPosition{}
	for _, d := range b.Funnel.Definitions() {
		p := FunnelPosition{Funnel: d.Name, Step: -1, Steps: len(d.Steps)}
		if pr := st[d.Name]; pr != nil {
			a := b.Funnel.View(&d, pr)
			p.Step, p.Conversions, p.Abandonments = a.Step, a.Conversions, a.Abandonments
			if a.Step >= 0 && a.Step < len(d.Steps) {
				p.StepName = stepName(d, a.Step)
				if a.Step < len(a.StepAt) {
					p.Since = ms(a.StepAt[a.Step])
				}
				p.EnteredAt = ms(a.EnteredAt)
			}
		}
		out = append(out, p)
	}
	return out
}

func stepName(d funnel.Definition, i int) string {
	if s := d.Steps[i]; s.Name != "" {
		return s.Name
	}
	return d.Steps[i].Events[0]
}

func ms(v int64) *time.Time {
	if v <= 0 {
		return nil
	}
	t := time.UnixMilli(v).UTC()
	return &t
}

func times(vs []int64) []time.Time {
	out := make([]time.Time, 0, len(vs))
	for _, v := range vs {
		out = append(out, time.UnixMilli(v).UTC())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].After(out[j]) })
	return out
}

func round(v float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(v*p) / p
}

func nonNil(v []float64) []float64 {
	if v == nil {
		return []float64{}
	}
	return v
}

func nonNilS(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}
