package schemas

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Alert is an alert as cxstream writes it: alert.v2 (schemas/alert.v2.json,
// topic cx.alerts.v2). Decoding JSON into it also reads alert.v1 messages
// and upgrades them (see UnmarshalJSON), so one reader handles both.
type Alert struct {
	Schema         string   `json:"schema"`
	AlertID        string   `json:"alert_id"`
	Type           string   `json:"type"`
	UserID         string   `json:"user_id"`
	OriginalUserID string   `json:"original_user_id,omitempty"`
	ConversationID string   `json:"conversation_id,omitempty"`
	Segment        string   `json:"segment,omitempty"`
	Priority       Priority `json:"priority"`
	// Sentiment of the triggering customer message in [-1, 1]
	// (negative_chat); nil when the alert has none.
	Sentiment *float64 `json:"sentiment,omitempty"`
	// ChurnProbability in [0, 1] (churn_risk); nil when the alert has none.
	ChurnProbability *float64 `json:"churn_probability,omitempty"`
	// RollingSentiment is the user's decayed mean sentiment, when known.
	RollingSentiment *float64      `json:"rolling_sentiment,omitempty"`
	Reasons          []AlertReason `json:"reasons"`
	Excerpt          string        `json:"excerpt,omitempty"`
	FunnelStage      string        `json:"funnel_stage,omitempty"`
	// EventTime is the event time of what the alert describes (ms);
	// DetectedAt the wall-clock time the alert was produced (ms).
	EventTime   int64        `json:"event_time"`
	DetectedAt  int64        `json:"detected_at"`
	Source      *AlertSource `json:"source,omitempty"`
	RuleVersion string       `json:"rule_version"`
}

// AlertReason is one machine-readable reason: a stable code, the figures
// behind it and the same in English. Codes are listed in COMPATIBILITY.md.
type AlertReason struct {
	Code   string         `json:"code"`
	Params map[string]any `json:"params,omitempty"`
	Text   string         `json:"text"`
}

// Reason codes of negative_chat alerts.
const (
	CodeVeryNegativeMessage   = "very_negative_message"   // sentiment, threshold
	CodeStrongNegativeMessage = "strong_negative_message" // sentiment, threshold
	CodeRollingNegative       = "rolling_negative"        // rolling_sentiment, messages, threshold
	CodeRepeatedNegative      = "repeated_negative"       // negative_messages
	CodeEscalated             = "escalated"               // (none)
	CodeHighValue             = "high_value"              // purchases, spend, currency
	CodeOpenCart              = "open_cart"               // funnel_stage
	CodeNegativeCues          = "negative_cues"           // cues: the n-grams and complaint patterns that weighed most
	CodeSegment               = "segment"                 // segment, priority_steps: a configured segment raised the priority
)

// Reason codes of churn_risk alerts besides the model's feature names
// (days_inactive, activity_drop, ...; params value and contribution).
const (
	CodeBaselineRisk = "baseline_risk" // (none)
	CodeLifecycle    = "lifecycle"     // lifecycle
)

// Reason codes of sla_breach alerts.
const (
	CodeFirstResponseOverdue = "first_response_overdue" // target_seconds, queued_priority
	CodePromoted             = "promoted"               // from, to: the item's priority was raised on the breach
)

// CodeV1Text marks a reason read from an alert.v1 message, which had
// English text only.
const CodeV1Text = "v1_text"

// V1Alert is the alert.v1 wire form, kept for reading history and for
// writing to v1 subscribers during their migration (topics.alerts_v1).
type V1Alert struct {
	Schema           string       `json:"schema"`
	AlertID          string       `json:"alert_id"`
	Type             string       `json:"type"`
	UserID           string       `json:"user_id"`
	OriginalUserID   string       `json:"original_user_id,omitempty"`
	ConversationID   string       `json:"conversation_id,omitempty"`
	Priority         Priority     `json:"priority"`
	Score            float64      `json:"score"`
	Reasons          []string     `json:"reasons"`
	Excerpt          string       `json:"excerpt,omitempty"`
	FunnelStage      string       `json:"funnel_stage,omitempty"`
	RollingSentiment float64      `json:"rolling_sentiment"`
	EventTime        int64        `json:"event_time"`
	DetectedAt       int64        `json:"detected_at"`
	Source           *AlertSource `json:"source,omitempty"`
	RuleVersion      string       `json:"rule_version"`
}

// V1 renders the alert as alert.v1: score is the sentiment for
// negative_chat and the churn probability for churn_risk (the overloading
// v2 removed); reasons are the English texts.
func (a Alert) V1() V1Alert {
	v := V1Alert{
		Schema: AlertV1, AlertID: a.AlertID, Type: a.Type, UserID: a.UserID, OriginalUserID: a.OriginalUserID,
		ConversationID: a.ConversationID, Priority: a.Priority, Score: a.Score(), Excerpt: a.Excerpt,
		FunnelStage: a.FunnelStage, EventTime: a.EventTime, DetectedAt: a.DetectedAt, Source: a.Source, RuleVersion: a.RuleVersion,
	}
	if a.RollingSentiment != nil {
		v.RollingSentiment = *a.RollingSentiment
	}
	v.Reasons = a.ReasonTexts()
	if len(v.Reasons) == 0 {
		v.Reasons = []string{a.Type}
	}
	return v
}

// Upgrade reads a v1 alert as v2: score goes to sentiment or
// churn_probability by type, each reason becomes code v1_text.
func (v V1Alert) Upgrade() Alert {
	a := Alert{
		Schema: AlertV2, AlertID: v.AlertID, Type: v.Type, UserID: v.UserID, OriginalUserID: v.OriginalUserID,
		ConversationID: v.ConversationID, Priority: v.Priority, Excerpt: v.Excerpt, FunnelStage: v.FunnelStage,
		EventTime: v.EventTime, DetectedAt: v.DetectedAt, Source: v.Source, RuleVersion: v.RuleVersion,
		RollingSentiment: new(v.RollingSentiment),
	}
	switch v.Type {
	case AlertNegativeChat:
		a.Sentiment = new(v.Score)
	case AlertChurnRisk:
		a.ChurnProbability = new(v.Score)
	}
	for _, text := range v.Reasons {
		if text == "" {
			text = "(no text)"
		}
		a.Reasons = append(a.Reasons, AlertReason{Code: CodeV1Text, Text: text})
	}
	return a
}

// Score is the alert's headline figure: the churn probability if it has
// one, else the sentiment, else 0.
func (a Alert) Score() float64 {
	switch {
	case a.ChurnProbability != nil:
		return *a.ChurnProbability
	case a.Sentiment != nil:
		return *a.Sentiment
	}
	return 0
}

// ReasonTexts are the English texts of the reasons.
func (a Alert) ReasonTexts() []string {
	out := make([]string, 0, len(a.Reasons))
	for _, r := range a.Reasons {
		out = append(out, r.Text)
	}
	return out
}

// ReasonCodes are the codes of the reasons.
func (a Alert) ReasonCodes() []string {
	out := make([]string, 0, len(a.Reasons))
	for _, r := range a.Reasons {
		out = append(out, r.Code)
	}
	return out
}

// HasReason reports whether the alert carries a reason with this code.
func (a Alert) HasReason(code string) bool {
	for _, r := range a.Reasons {
		if r.Code == code {
			return true
		}
	}
	return false
}

// UnmarshalJSON reads alert.v2, and alert.v1 upgraded to v2 (see
// V1Alert.Upgrade), telling them apart by "schema" or, failing that, by
// whether reasons are strings. It does not validate: Validator.DecodeAlert
// does.
func (a *Alert) UnmarshalJSON(raw []byte) error {
	var probe struct {
		Schema  string            `json:"schema"`
		Reasons []json.RawMessage `json:"reasons"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return err
	}
	v1 := probe.Schema == AlertV1
	if probe.Schema == "" && len(probe.Reasons) > 0 {
		v1 = strings.HasPrefix(strings.TrimSpace(string(probe.Reasons[0])), `"`)
	}
	if v1 {
		var old V1Alert
		if err := json.Unmarshal(raw, &old); err != nil {
			return fmt.Errorf("alert.v1: %w", err)
		}
		*a = old.Upgrade()
		return nil
	}
	type plain Alert // no methods: no recursion
	var p plain
	if err := json.Unmarshal(raw, &p); err != nil {
		return err
	}
	*a = Alert(p)
	return nil
}
