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

// object reads the top-level members of a JSON object in order, without
// building a map: the fast path's hot loop allocates only the strings it
// keeps. start checks that raw is valid UTF-8 and valid JSON (so the
// scanning after it can be simple) and is an object.
type object struct {
	b []byte
	i int
}

func (o *object) start(raw []byte) bool {
	if !utf8.Valid(raw) || !gojson.Valid(raw) {
		return false
	}
	o.b, o.i = raw, 0
	o.space()
	if o.i >= len(o.b) || o.b[o.i] != '{' {
		return false
	}
	o.i++
	return true
}

func (o *object) space() {
	for o.i < len(o.b) && (o.b[o.i] == ' ' || o.b[o.i] == '\t' || o.b[o.i] == '\n' || o.b[o.i] == '\r') {
		o.i++
	}
}

// next returns the next member's key and raw value. done is set at the
// end of the object; ok is false when the fast path cannot read a member
// (a key with escapes, which only the library compares exactly).
func (o *object) next() (key, val []byte, done, ok bool) {
	o.space()
	if o.i < len(o.b) && o.b[o.i] == ',' {
		o.i++
		o.space()
	}
	if o.i >= len(o.b) || o.b[o.i] == '}' {
		return nil, nil, true, true
	}
	if o.b[o.i] != '"' {
		return nil, nil, false, false
	}
	end := o.stringEnd(o.i)
	key = o.b[o.i+1 : max(o.i+1, end-1)]
	if bytes.IndexByte(key, '\\') >= 0 {
		return nil, nil, false, false
	}
	o.i = end
	o.space()
	if o.i >= len(o.b) || o.b[o.i] != ':' {
		return nil, nil, false, false
	}
	o.i++
	o.space()
	if o.i >= len(o.b) {
		return nil, nil, false, false
	}
	from := o.i
	o.i = o.valueEnd(o.i)
	return key, o.b[from:o.i], false, true
}

// stringEnd is the index after the string starting at i (valid JSON).
func (o *object) stringEnd(i int) int {
	for i++; i < len(o.b); i++ {
		switch o.b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(o.b)
}

// valueEnd is the index after the value starting at i (valid JSON).
func (o *object) valueEnd(i int) int {
	switch o.b[i] {
	case '"':
		return o.stringEnd(i)
	case '{', '[':
		depth := 0
		for i < len(o.b) {
			switch o.b[i] {
			case '"':
				i = o.stringEnd(i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for ; i < len(o.b); i++ { // a number or a literal
		switch o.b[i] {
		case ',', '}', ']', ' ', '\t', '\r', '\n':
			return i
		}
	}
	return i
}

func str(v gojson.RawMessage, minLen, maxLen int) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	if body := v[1 : len(v)-1]; bytes.IndexByte(body, '\\') < 0 && validJSONString(body) {
		// No escapes: the value is its bytes.
		n := utf8.RuneCount(body)
		return string(body), n >= minLen && n <= maxLen
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

// validJSONString: body holds no raw control character (valid JSON
// cannot; callers outside a validated document may pass anything).
func validJSONString(body []byte) bool {
	for _, c := range body {
		if c < 0x20 {
			return false
		}
	}
	return true
}

// known returns the constant among names that v (a JSON string without
// escapes) spells, so common values cost no allocation; "" if none.
func known(v []byte, names ...string) string {
	if len(v) < 2 || v[0] != '"' {
		return ""
	}
	body := v[1 : len(v)-1]
	for _, n := range names {
		if string(body) == n {
			return n
		}
	}
	return ""
}

// The fields a message must have, as bits.
const (
	hasEventID = 1 << iota
	hasUserID
	hasType
	hasEventTime
	hasAmount
	hasCurrency
	hasConversationID
	hasSender
	hasText
)

func fastClick(raw []byte, ev *ClickEvent) bool {
	var o object
	if !o.start(raw) {
		return false
	}
	var seen int
	for {
		k, v, done, ok := o.next()
		if !ok {
			return false
		}
		if done {
			break
		}
		switch string(k) {
		case "schema":
			ev.Schema = known(v, ClickstreamV1, ClickstreamV2)
			ok = ev.Schema != ""
		case "event_id":
			seen |= hasEventID
			ev.EventID, ok = str(v, 1, 128)
		case "user_id":
			seen |= hasUserID
			ev.UserID, ok = str(v, 1, 128)
		case "session_id":
			ev.SessionID, ok = str(v, 0, 128)
		case "type":
			seen |= hasType
			if ev.Type = known(v, BuiltinClickNames...); ev.Type == "" {
				ev.Type, ok = str(v, 1, MaxEventNameLength)
				ok = ok && ValidEventName(ev.Type)
			}
		case "page":
			ev.Page, ok = str(v, 0, 2048)
		case "item_id":
			ev.ItemID, ok = str(v, 0, 128)
		case "properties":
			ev.Properties, ok = properties(v)
		case "amount":
			seen |= hasAmount
			ev.Amount, ok = number(v, 0, 1e9)
		case "currency":
			seen |= hasCurrency
			ev.Currency, ok = str(v, 3, 3)
			ok = ok && isUpper3(ev.Currency)
		case "event_time":
			seen |= hasEventTime
			ev.EventTime, ok = integer(v, minEventTime, maxEventTime)
		default:
			ok = true // other fields are allowed and ignored
		}
		if !ok {
			return false
		}
	}
	const required = hasEventID | hasUserID | hasType | hasEventTime
	return seen&required == required && (ev.Type != ClickPurchase || seen&(hasAmount|hasCurrency) == hasAmount|hasCurrency)
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
	var o object
	if !o.start(raw) {
		return false
	}
	var seen int
	for {
		k, v, done, ok := o.next()
		if !ok {
			return false
		}
		if done {
			break
		}
		switch string(k) {
		case "schema":
			m.Schema = known(v, ChatV1)
			ok = m.Schema != ""
		case "event_id":
			seen |= hasEventID
			m.EventID, ok = str(v, 1, 128)
		case "conversation_id":
			seen |= hasConversationID
			m.ConversationID, ok = str(v, 1, 128)
		case "user_id":
			seen |= hasUserID
			m.UserID, ok = str(v, 1, 128)
		case "sender":
			seen |= hasSender
			m.Sender = known(v, SenderCustomer, SenderAgent, SenderBot)
			ok = m.Sender != ""
		case "channel":
			m.Channel = known(v, "web", "app", "email", "phone", "social", "sms")
			ok = m.Channel != ""
		case "text":
			seen |= hasText
			m.Text, ok = str(v, 0, 8000)
		case "language":
			if m.Language = known(v, "en", "zh", "de", "fr", "es"); m.Language == "" {
				m.Language, ok = str(v, 2, 64)
				ok = ok && isLanguageTag(m.Language)
			}
		case "event_time":
			seen |= hasEventTime
			m.EventTime, ok = integer(v, minEventTime, maxEventTime)
		default:
			ok = true
		}
		if !ok {
			return false
		}
	}
	const required = hasEventID | hasConversationID | hasUserID | hasSender | hasText | hasEventTime
	return seen&required == required
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

// EventTime reads a click or chat message's top-level event_time without
// validating or decoding the rest: the consumer orders the two input
// streams by it before the pipeline decodes them. It never fails on bad
// input; ok is false when there is no readable event_time (the message is
// then ordered first and the pipeline dead-letters or decodes it).
func EventTime(raw []byte) (at int64, ok bool) {
	o := object{b: raw}
	o.space()
	if o.i >= len(o.b) || o.b[o.i] != '{' {
		return 0, false
	}
	o.i++
	for {
		k, v, done, read := o.next()
		if !read {
			return 0, false
		}
		if done {
			return at, ok
		}
		if string(k) == "event_time" { // the last one counts, as in the decoders
			n, err := strconv.ParseInt(string(v), 10, 64)
			at, ok = n, err == nil
		}
	}
}
