package schemas

import (
	"bytes"
	"strconv"
	"unicode/utf8"

	gojson "github.com/goccy/go-json"
)

// The fast path: most messages are valid, and running the JSON Schema
// library on each costs more than everything else the processor does per
// event. fastClick and fastChat decode a message once and apply the same
// rules as the schema documents; when they cannot be sure (a null, an
// unusual number, a missing or wrong field), they say so and the library
// decides and writes the reason. They never accept what the schema
// rejects: FuzzFastPathAgreesWithSchema checks that.

// fields reads the top-level object as exact (case-sensitive) keys to raw
// values, so presence, null and key case are all visible.
func fields(raw []byte) (map[string]gojson.RawMessage, bool) {
	if !utf8.Valid(raw) {
		return nil, false
	}
	var m map[string]gojson.RawMessage
	if err := gojson.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, false
	}
	return m, true
}

func str(v gojson.RawMessage, minLen, maxLen int) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	var s string
	if err := gojson.Unmarshal(v, &s); err != nil {
		return "", false
	}
	n := utf8.RuneCountInString(s)
	return s, n >= minLen && n <= maxLen
}

// integer accepts plain decimal integer literals only; 1.0 or 1e3 (also
// integers to JSON Schema) go to the library.
func integer(v gojson.RawMessage, lo, hi int64) (int64, bool) {
	if len(v) == 0 || len(v) > 19 {
		return 0, false
	}
	for i, c := range v {
		if (c < '0' || c > '9') && !(i == 0 && c == '-') {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil && n >= lo && n <= hi
}

func number(v gojson.RawMessage, lo, hi float64) (float64, bool) {
	if len(v) == 0 || !(v[0] == '-' || (v[0] >= '0' && v[0] <= '9')) {
		return 0, false
	}
	for _, c := range v {
		if !(c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
			return 0, false
		}
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return f, err == nil && f >= lo && f <= hi
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

const (
	minEventTime = 946684800000
	maxEventTime = 9007199254740991
)

func fastClick(raw []byte, ev *ClickEvent) bool {
	m, ok := fields(raw)
	if !ok {
		return false
	}
	for k, v := range m {
		switch k {
		case "schema":
			ev.Schema, ok = str(v, 0, 64)
			ok = ok && (ev.Schema == ClickstreamV1 || ev.Schema == ClickstreamV2)
		case "event_id":
			ev.EventID, ok = str(v, 1, 128)
		case "user_id":
			ev.UserID, ok = str(v, 1, 128)
		case "session_id":
			ev.SessionID, ok = str(v, 0, 128)
		case "type":
			ev.Type, ok = str(v, 1, MaxEventNameLength)
			ok = ok && ValidEventName(ev.Type)
		case "page":
			ev.Page, ok = str(v, 0, 2048)
		case "item_id":
			ev.ItemID, ok = str(v, 0, 128)
		case "properties":
			ev.Properties, ok = properties(v)
		case "amount":
			ev.Amount, ok = number(v, 0, 1e9)
		case "currency":
			ev.Currency, ok = str(v, 3, 3)
			ok = ok && isUpper3(ev.Currency)
		case "event_time":
			ev.EventTime, ok = integer(v, minEventTime, maxEventTime)
		default:
			ok = true // other fields are allowed and ignored
		}
		if !ok {
			return false
		}
	}
	_, hasAmount := m["amount"]
	_, hasCurrency := m["currency"]
	return has(m, "event_id", "user_id", "type", "event_time") && (ev.Type != ClickPurchase || (hasAmount && hasCurrency))
}

func properties(v gojson.RawMessage) (map[string]any, bool) {
	if len(v) == 0 || v[0] != '{' || bytes.Contains(v, []byte("null")) {
		return nil, false
	}
	var p map[string]any
	if err := gojson.Unmarshal(v, &p); err != nil || len(p) > 64 {
		return nil, false
	}
	for _, x := range p {
		switch x.(type) {
		case string, float64, bool:
		default:
			return nil, false
		}
	}
	return p, true
}

func isUpper3(s string) bool {
	return len(s) == 3 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' && s[1] <= 'Z' && s[2] >= 'A' && s[2] <= 'Z'
}

func fastChat(raw []byte, m *ChatMessage) bool {
	fs, ok := fields(raw)
	if !ok {
		return false
	}
	for k, v := range fs {
		switch k {
		case "schema":
			m.Schema, ok = str(v, 0, 64)
			ok = ok && m.Schema == ChatV1
		case "event_id":
			m.EventID, ok = str(v, 1, 128)
		case "conversation_id":
			m.ConversationID, ok = str(v, 1, 128)
		case "user_id":
			m.UserID, ok = str(v, 1, 128)
		case "sender":
			m.Sender, ok = str(v, 1, 16)
			ok = ok && oneOf(m.Sender, SenderCustomer, SenderAgent, SenderBot)
		case "channel":
			m.Channel, ok = str(v, 1, 16)
			ok = ok && oneOf(m.Channel, "web", "app", "email", "phone", "social", "sms")
		case "text":
			m.Text, ok = str(v, 0, 8000)
		case "language":
			m.Language, ok = str(v, 2, 64)
			ok = ok && isLanguageTag(m.Language)
		case "event_time":
			m.EventTime, ok = integer(v, minEventTime, maxEventTime)
		default:
			ok = true
		}
		if !ok {
			return false
		}
	}
	return has(fs, "event_id", "conversation_id", "user_id", "sender", "text", "event_time")
}

// isLanguageTag is ^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$.
func isLanguageTag(s string) bool {
	i := 0
	for i < len(s) && s[i] >= 'a' && s[i] <= 'z' {
		i++
	}
	if i < 2 || i > 3 {
		return false
	}
	for i < len(s) {
		if s[i] != '-' {
			return false
		}
		i++
		j := i
		for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j-i < 2 || j-i > 8 {
			return false
		}
		i = j
	}
	return true
}

func has(m map[string]gojson.RawMessage, keys ...string) bool {
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			return false
		}
	}
	return true
}
