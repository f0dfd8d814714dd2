package schemas

import (
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// Schema names, also the value of the optional "schema" field of a message.
const (
	ClickstreamV1 = "clickstream.v1"
	// ClickstreamV2 opens the event name (type) to any printable name;
	// every v1 message is a valid v2 message.
	ClickstreamV2 = "clickstream.v2"
	ChatV1        = "chat.v1"
	AlertV1       = "alert.v1"
	AlertV2       = "alert.v2"
)

// Built-in click event names (clickstream.v1's closed set). They keep
// their meaning in v2; other names get theirs from configuration.
const (
	ClickPageView       = "page_view"
	ClickProductView    = "product_view"
	ClickCourseView     = "course_view"
	ClickSearch         = "search"
	ClickAddToCart      = "add_to_cart"
	ClickRemoveFromCart = "remove_from_cart"
	ClickCheckoutStart  = "checkout_start"
	ClickPurchase       = "purchase"
	ClickSignup         = "signup"
	ClickLogin          = "login"
	ClickLogout         = "logout"
	ClickSupportContact = "support_contact"
)

// BuiltinClickNames are the 12 built-in event names.
var BuiltinClickNames = []string{ClickPageView, ClickProductView, ClickCourseView, ClickSearch, ClickAddToCart, ClickRemoveFromCart,
	ClickCheckoutStart, ClickPurchase, ClickSignup, ClickLogin, ClickLogout, ClickSupportContact}

// MaxEventNameLength bounds an event name, in characters.
const MaxEventNameLength = 128

// ValidEventName reports whether name may be a clickstream event name:
// 1 to MaxEventNameLength characters of valid UTF-8 with no control
// character (C0, DEL, C1), as clickstream.v2's pattern says.
func ValidEventName(name string) bool {
	if name == "" || !utf8.ValidString(name) {
		return false
	}
	n := 0
	for _, r := range name {
		if r < 0x20 || (r >= 0x7f && r <= 0x9f) {
			return false
		}
		n++
	}
	return n <= MaxEventNameLength
}

// ClickEvent is a clickstream.v2 (or v1) message.
type ClickEvent struct {
	Schema     string         `json:"schema,omitempty"`
	EventID    string         `json:"event_id"`
	UserID     string         `json:"user_id"`
	SessionID  string         `json:"session_id,omitempty"`
	Type       string         `json:"type"`
	Page       string         `json:"page,omitempty"`
	ItemID     string         `json:"item_id,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
	Amount     float64        `json:"amount,omitempty"`
	Currency   string         `json:"currency,omitempty"`
	EventTime  int64          `json:"event_time"`
}

// Chat senders of chat.v1.
const (
	SenderCustomer = "customer"
	SenderAgent    = "agent"
	SenderBot      = "bot"
)

// ChatMessage is a chat.v1 message. Text is personal data: never log it.
type ChatMessage struct {
	Schema         string `json:"schema,omitempty"`
	EventID        string `json:"event_id"`
	ConversationID string `json:"conversation_id"`
	UserID         string `json:"user_id"`
	Sender         string `json:"sender"`
	Channel        string `json:"channel,omitempty"`
	Text           string `json:"text"`
	Language       string `json:"language,omitempty"`
	EventTime      int64  `json:"event_time"`
}

// Alert types. alert.v2 may gain types: readers skip the ones they do not
// handle.
const (
	AlertNegativeChat = "negative_chat"
	AlertChurnRisk    = "churn_risk"
	// AlertSLABreach: a support-queue conversation waited past its
	// first-response target (raised once per conversation).
	AlertSLABreach = "sla_breach"
)

// AlertTypes are the alert types a subscriber may filter on.
var AlertTypes = []string{AlertNegativeChat, AlertChurnRisk, AlertSLABreach}

// Priority of an alert in the support queue, lowest first.
type Priority string

// Priorities of alerts (v1 and v2).
const (
	PriorityLow    Priority = "LOW"
	PriorityNormal Priority = "NORMAL"
	PriorityHigh   Priority = "HIGH"
	PriorityUrgent Priority = "URGENT"
)

// Rank orders priorities: LOW is 0, URGENT is 3, anything else -1.
func (p Priority) Rank() int {
	switch p {
	case PriorityLow:
		return 0
	case PriorityNormal:
		return 1
	case PriorityHigh:
		return 2
	case PriorityUrgent:
		return 3
	}
	return -1
}

// PriorityFromRank is the inverse of Rank, clamped to LOW..URGENT.
func PriorityFromRank(r int) Priority {
	switch {
	case r <= 0:
		return PriorityLow
	case r == 1:
		return PriorityNormal
	case r == 2:
		return PriorityHigh
	}
	return PriorityUrgent
}

// AlertSource names the input record that triggered an alert.
type AlertSource struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
	EventID   string `json:"event_id,omitempty"`
}

// MarshalJSON writes a purchase's amount even when it is 0: the schema
// requires the field on purchases, and omitempty would drop a free one.
func (e ClickEvent) MarshalJSON() ([]byte, error) {
	// goccy/go-json writes what encoding/json writes (TestClickJSONIsWhat-
	// EncodingJSONWrites), in a third of the time: generators and the
	// event mappers encode every click.
	type plain ClickEvent // no methods: no recursion
	if e.Type != ClickPurchase {
		return gojson.Marshal(plain(e))
	}
	return gojson.Marshal(struct {
		plain
		Amount float64 `json:"amount"`
	}{plain(e), e.Amount})
}
