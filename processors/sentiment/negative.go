package sentiment

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/cxstream/cxstream/internal/redact"
	"github.com/cxstream/cxstream/schemas"
)

// RuleVersion names the negative-chat rule in the alerts it emits.
const RuleVersion = "negative_chat/1"

// veryNegative: a message at or below this is one priority step more
// urgent than a merely strong negative one.
const veryNegative = -0.8

// Config tunes rolling sentiment and the negative-chat alert.
type Config struct {
	// HalfLife of the rolling means, by event time.
	HalfLife time.Duration `yaml:"half_life"`
	// KeepLast scores are kept per user and conversation.
	KeepLast int `yaml:"keep_last"`
	// StrongNegative: one customer message at or below this alerts.
	StrongNegative float64 `yaml:"strong_negative"`
	// RollingNegative: a conversation whose rolling mean falls to this,
	// over at least MinMessages customer messages, alerts.
	RollingNegative float64 `yaml:"rolling_negative"`
	MinMessages     int     `yaml:"min_messages"`
	// Cooldown per conversation: within it, only an escalation to a
	// higher priority alerts again.
	Cooldown time.Duration `yaml:"cooldown"`
	// HighValueSpend: customers who spent at least this much get one
	// priority step more, when their segment is not known (segments off,
	// or no click yet).
	HighValueSpend float64 `yaml:"high_value_spend"`
	// SegmentPriority: priority steps added to the alerts of customers in
	// a segment (segments:), e.g. high_value: 1. When the segment is
	// known it decides instead of HighValueSpend.
	SegmentPriority map[string]int `yaml:"segment_priority"`
	// ConversationTTL: conversations idle longer are forgotten.
	ConversationTTL time.Duration `yaml:"conversation_ttl"`
	// History: how long negative messages and contacts are remembered
	// for the churn features.
	History time.Duration `yaml:"history"`
	// Models: language ("zh", "en") -> model file written by `cxstream
	// sentiment train`, used instead of the embedded model of that
	// language (the runner loads them; see NewScorer).
	Models map[string]string `yaml:"models"`
}

// DefaultConfig is what cxstream ships.
func DefaultConfig() Config {
	return Config{
		HalfLife:        30 * time.Minute,
		KeepLast:        10,
		StrongNegative:  -0.6,
		RollingNegative: -0.35,
		MinMessages:     2,
		Cooldown:        30 * time.Minute,
		HighValueSpend:  100,
		SegmentPriority: map[string]int{"high_value": 1},
		ConversationTTL: 7 * 24 * time.Hour,
		History:         14 * 24 * time.Hour,
	}
}

// Validate reports a config that cannot work.
func (c Config) Validate() error {
	switch {
	case c.HalfLife <= 0:
		return fmt.Errorf("half_life must be positive")
	case c.StrongNegative < -1 || c.StrongNegative > 0:
		return fmt.Errorf("strong_negative must be in [-1, 0], got %v", c.StrongNegative)
	case c.RollingNegative < -1 || c.RollingNegative > 0:
		return fmt.Errorf("rolling_negative must be in [-1, 0], got %v", c.RollingNegative)
	case c.MinMessages < 1:
		return fmt.Errorf("min_messages must be at least 1")
	case c.Cooldown < 0 || c.ConversationTTL <= 0 || c.History <= 0:
		return fmt.Errorf("cooldown, conversation_ttl and history must be positive")
	}
	return c.validateModels()
}

func (c Config) validateModels() error {
	for lang, path := range c.Models {
		if _, err := ParseLanguage(lang); err != nil {
			return fmt.Errorf("models: %w", err)
		}
		if path == "" {
			return fmt.Errorf("models: %s has no file", lang)
		}
	}
	return nil
}

// State is one user's chat state.
type State struct {
	User          Rolling                  `json:"u"`
	Conversations map[string]*Conversation `json:"c,omitempty"`
	// NegativeAt and ContactAt are event times (ms) of negative customer
	// messages and of conversation starts within Config.History.
	NegativeAt []int64 `json:"neg,omitempty"`
	ContactAt  []int64 `json:"con,omitempty"`
	Messages   int64   `json:"msgs"`
}

// Conversation is the state of one support conversation.
type Conversation struct {
	Rolling   Rolling `json:"r"`
	StartedAt int64   `json:"s"`
	LastAt    int64   `json:"l"`
	Negatives int     `json:"neg,omitempty"`
	// AlertRank is the priority rank of the last alert, -1 for none.
	AlertRank int   `json:"ar"`
	AlertAt   int64 `json:"at,omitempty"`
}

// Customer is what the clickstream side knows of the customer; it raises
// an alert's priority.
type Customer struct {
	Purchases int
	Spend     float64
	// Currency of Spend, when the shop has one (events.purchase.default_currency).
	Currency    string
	FunnelStage string
	// Segment is the customer's segment ("" when unknown): the alert
	// carries it, and SegmentPriority may raise the priority.
	Segment string
}

// Outcome of one chat message.
type Outcome struct {
	// Scored is false for agent and bot messages, which do not count.
	Scored bool
	Score  Score
	Alert  *schemas.Alert
}

// Processor applies chat messages to a user's State.
type Processor struct {
	cfg    Config
	scorer Scorer
}

// NewProcessor returns a processor with the given scorer.
func NewProcessor(cfg Config, scorer Scorer) (*Processor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("sentiment: %w", err)
	}
	return &Processor{cfg: cfg, scorer: scorer}, nil
}

// Apply folds one message into st and returns the alert it triggers, if
// any. Only customer messages are scored.
func (p *Processor) Apply(st *State, m schemas.ChatMessage, cust Customer) Outcome {
	if m.Sender != schemas.SenderCustomer {
		if c := st.Conversations[m.ConversationID]; c != nil {
			c.LastAt = max(c.LastAt, m.EventTime)
		}
		return Outcome{}
	}
	score := p.scorer.Score(m.Text)
	st.Messages++
	st.User.Add(score.Value, m.EventTime, p.cfg.HalfLife, p.cfg.KeepLast)

	if st.Conversations == nil {
		st.Conversations = map[string]*Conversation{}
	}
	conv := st.Conversations[m.ConversationID]
	if conv == nil {
		conv = &Conversation{StartedAt: m.EventTime, AlertRank: -1}
		st.Conversations[m.ConversationID] = conv
		st.ContactAt = append(st.ContactAt, m.EventTime)
	}
	conv.StartedAt = min(conv.StartedAt, m.EventTime)
	conv.LastAt = max(conv.LastAt, m.EventTime)
	conv.Rolling.Add(score.Value, m.EventTime, p.cfg.HalfLife, p.cfg.KeepLast)
	if score.Label == Negative {
		conv.Negatives++
		st.NegativeAt = append(st.NegativeAt, m.EventTime)
	}
	p.prune(st, m.EventTime)

	out := Outcome{Scored: true, Score: score}
	out.Alert = p.decide(st, conv, m, score, cust)
	return out
}

func (p *Processor) decide(st *State, conv *Conversation, m schemas.ChatMessage, score Score, cust Customer) *schemas.Alert {
	strong := score.Value <= p.cfg.StrongNegative
	rolling := conv.Rolling.Count >= p.cfg.MinMessages && conv.Rolling.Mean <= p.cfg.RollingNegative
	if !strong && !rolling {
		return nil
	}
	var reasons []schemas.AlertReason
	rank := 0
	switch {
	case score.Value <= veryNegative:
		rank = 2
		reasons = append(reasons, schemas.AlertReason{Code: schemas.CodeVeryNegativeMessage,
			Params: map[string]any{"sentiment": round3(score.Value), "threshold": veryNegative},
			Text:   fmt.Sprintf("very negative message (%.2f)", score.Value)})
	case strong:
		rank = 1
		reasons = append(reasons, schemas.AlertReason{Code: schemas.CodeStrongNegativeMessage,
			Params: map[string]any{"sentiment": round3(score.Value), "threshold": p.cfg.StrongNegative},
			Text:   fmt.Sprintf("strongly negative message (%.2f)", score.Value)})
	}
	if rolling {
		reasons = append(reasons, schemas.AlertReason{Code: schemas.CodeRollingNegative,
			Params: map[string]any{"rolling_sentiment": round3(conv.Rolling.Mean), "messages": conv.Rolling.Count, "threshold": p.cfg.RollingNegative},
			Text:   fmt.Sprintf("conversation sentiment fell to %.2f over %d messages", conv.Rolling.Mean, conv.Rolling.Count)})
	}
	if conv.Negatives >= 3 {
		rank++
		reasons = append(reasons, schemas.AlertReason{Code: schemas.CodeRepeatedNegative,
			Params: map[string]any{"negative_messages": conv.Negatives},
			Text:   fmt.Sprintf("%d negative messages in this conversation", conv.Negatives)})
	}
	// Whether to alert depends on the conversation alone, so the same chat
	// stream always yields the same alerts; what the clickstream side knows
	// of the customer only raises the priority.
	chatRank := rank
	escalation := chatRank > conv.AlertRank
	cooled := conv.AlertRank < 0 || m.EventTime-conv.AlertAt >= p.cfg.Cooldown.Milliseconds()
	if !escalation && !cooled {
		return nil
	}
	if conv.AlertRank >= 0 && escalation {
		reasons = append(reasons, schemas.AlertReason{Code: schemas.CodeEscalated, Text: "escalated"})
	}
	segment, boost := cust.Segment, p.cfg.SegmentPriority[cust.Segment]
	if segment == "" && cust.Spend >= p.cfg.HighValueSpend {
		segment, boost = "high_value", 1
	}
	if boost > 0 {
		rank += boost
		reasons = append(reasons, segmentReason(cust, segment, boost))
	}
	if cust.FunnelStage == schemas.ClickCheckoutStart || cust.FunnelStage == schemas.ClickAddToCart {
		rank++
		reasons = append(reasons, schemas.AlertReason{Code: schemas.CodeOpenCart,
			Params: map[string]any{"funnel_stage": cust.FunnelStage},
			Text:   "in the middle of a purchase (" + cust.FunnelStage + ")"})
	}
	if ex, ok := p.scorer.(Explainer); ok && score.Label == Negative {
		if why := ex.Reasons(m.Text); len(why) > 0 {
			reasons = append(reasons, schemas.AlertReason{Code: schemas.CodeNegativeCues,
				Params: map[string]any{"cues": strings.Join(why, ", ")},
				Text:   "because of: " + strings.Join(why, ", ")})
		}
	}
	rank = min(rank, schemas.PriorityUrgent.Rank())
	conv.AlertRank, conv.AlertAt = chatRank, m.EventTime
	return &schemas.Alert{
		Schema:           schemas.AlertV2,
		AlertID:          schemas.AlertID(schemas.AlertNegativeChat, m.UserID, m.EventID),
		Type:             schemas.AlertNegativeChat,
		UserID:           m.UserID,
		ConversationID:   m.ConversationID,
		Segment:          segment,
		Priority:         schemas.PriorityFromRank(rank),
		Sentiment:        new(round3(score.Value)),
		Reasons:          reasons,
		Excerpt:          redact.Excerpt(m.Text, 200),
		FunnelStage:      cust.FunnelStage,
		RollingSentiment: new(round3(st.User.Mean)),
		EventTime:        m.EventTime,
		RuleVersion:      RuleVersion,
	}
}

// prune forgets idle conversations and history older than the window, so
// a user's state stays small however long they stay.
func (p *Processor) prune(st *State, now int64) {
	ttl := p.cfg.ConversationTTL.Milliseconds()
	for id, c := range st.Conversations {
		if now-c.LastAt > ttl {
			delete(st.Conversations, id)
		}
	}
	horizon := now - p.cfg.History.Milliseconds()
	st.NegativeAt = slices.DeleteFunc(st.NegativeAt, func(t int64) bool { return t < horizon })
	st.ContactAt = slices.DeleteFunc(st.ContactAt, func(t int64) bool { return t < horizon })
}

// segmentReason says why a negative chat's priority was raised for the
// customer's segment: high value (with purchases and spend), or another
// segment configured in sentiment.segment_priority.
func segmentReason(cust Customer, segment string, boost int) schemas.AlertReason {
	if segment != "high_value" {
		return schemas.AlertReason{Code: schemas.CodeSegment, Params: map[string]any{"segment": segment, "priority_steps": boost},
			Text: "customer segment " + segment}
	}
	purchases := fmt.Sprintf("%d purchases", cust.Purchases)
	if cust.Purchases == 1 {
		purchases = "1 purchase"
	}
	spent := fmt.Sprintf("%.2f spent", cust.Spend)
	if cust.Currency != "" {
		spent = fmt.Sprintf("%.2f %s spent", cust.Spend, cust.Currency)
	}
	params := map[string]any{"purchases": cust.Purchases, "spend": math.Round(cust.Spend*100) / 100}
	if cust.Currency != "" {
		params["currency"] = cust.Currency
	}
	return schemas.AlertReason{Code: schemas.CodeHighValue, Params: params, Text: fmt.Sprintf("high-value customer (%s, %s)", purchases, spent)}
}
