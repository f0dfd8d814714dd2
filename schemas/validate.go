package schemas

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed *.v1.json *.v2.json
var documents embed.FS

// DefaultMaxMessageBytes bounds an input message; a larger one is rejected
// before it is parsed.
const DefaultMaxMessageBytes = 256 << 10

// Reason classifies why a message was rejected. It is the value of the
// dead-letter header "cx-reason" and a metric label, so it is a small,
// fixed set.
type Reason string

// Reasons a message can be rejected for.
const (
	ReasonTooLarge    Reason = "too_large"
	ReasonInvalidUTF8 Reason = "invalid_utf8"
	ReasonInvalidJSON Reason = "invalid_json"
	ReasonSchema      Reason = "schema_violation"
)

// ErrInvalid matches every *InvalidError with errors.Is.
var ErrInvalid = errors.New("invalid message")

// InvalidError says why a message does not conform to its schema. Detail
// names fields and rules, never a field's value: messages carry personal
// data and this text ends up in logs and dead-letter headers.
type InvalidError struct {
	Schema string
	Reason Reason
	Detail string
}

func (e *InvalidError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("%s: %s", e.Schema, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s", e.Schema, e.Reason, e.Detail)
}

// Is reports whether target is ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Validator decodes and validates messages against the embedded schemas.
// It is safe for concurrent use.
type Validator struct {
	maxBytes int
	compiled map[string]*jsonschema.Schema
	printer  *message.Printer
}

// NewValidator compiles the embedded schemas. maxBytes <= 0 means
// DefaultMaxMessageBytes.
func NewValidator(maxBytes int) (*Validator, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxMessageBytes
	}
	c := jsonschema.NewCompiler()
	v := &Validator{maxBytes: maxBytes, compiled: map[string]*jsonschema.Schema{}, printer: message.NewPrinter(language.English)}
	for _, name := range []string{ClickstreamV1, ClickstreamV2, ChatV1, AlertV1, AlertV2, SegmentsV1} {
		raw, err := documents.ReadFile(name + ".json")
		if err != nil {
			return nil, fmt.Errorf("read schema %s: %w", name, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			return nil, fmt.Errorf("parse schema %s: %w", name, err)
		}
		if err := c.AddResource(name+".json", doc); err != nil {
			return nil, fmt.Errorf("add schema %s: %w", name, err)
		}
		sch, err := c.Compile(name + ".json")
		if err != nil {
			return nil, fmt.Errorf("compile schema %s: %w", name, err)
		}
		v.compiled[name] = sch
	}
	return v, nil
}

// Document returns the JSON Schema document of a schema name, for tools
// that publish the contract.
func Document(name string) ([]byte, error) { return documents.ReadFile(name + ".json") }

// DecodeClick validates raw against clickstream.v2, which accepts every
// clickstream.v1 message too, and decodes it.
func (v *Validator) DecodeClick(raw []byte) (ClickEvent, error) {
	var ev ClickEvent
	if len(raw) <= v.maxBytes && fastClick(raw, &ev) {
		return ev, nil
	}
	ev = ClickEvent{}
	err := v.decode(ClickstreamV2, raw, &ev)
	return ev, err
}

// DecodeChat validates raw against chat.v1 and decodes it.
func (v *Validator) DecodeChat(raw []byte) (ChatMessage, error) {
	var m ChatMessage
	if len(raw) <= v.maxBytes && fastChat(raw, &m) {
		return m, nil
	}
	m = ChatMessage{}
	err := v.decode(ChatV1, raw, &m)
	return m, err
}

// Validate checks raw against the named schema without decoding it.
func (v *Validator) Validate(schema string, raw []byte) error {
	return v.decode(schema, raw, nil)
}

// ValidateAlert checks that an alert this program built conforms to
// alert.v2.
func (v *Validator) ValidateAlert(a Alert) error {
	raw, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode alert: %w", err)
	}
	return v.Validate(AlertV2, raw)
}

// DecodeAlert validates raw against alert.v1 or alert.v2, chosen by its
// "schema" field (v2 when absent or unknown, so the const names the
// problem), and decodes it; a v1 alert is upgraded (V1Alert.Upgrade).
func (v *Validator) DecodeAlert(raw []byte) (Alert, error) {
	if AlertSchemaOf(raw) == AlertV1 {
		var old V1Alert
		if err := v.decode(AlertV1, raw, &old); err != nil {
			return Alert{}, err
		}
		return old.Upgrade(), nil
	}
	var a Alert
	err := v.decode(AlertV2, raw, &a)
	return a, err
}

// AlertSchemaOf tells which alert schema raw claims: AlertV1 when its
// "schema" field says alert.v1, else AlertV2 (whose own checks then judge
// it). It does not validate.
func AlertSchemaOf(raw []byte) string {
	if m, ok := fields(raw); ok {
		if s, _ := str(m["schema"], 0, 64); s == AlertV1 {
			return AlertV1
		}
	}
	return AlertV2
}

func (v *Validator) decode(schema string, raw []byte, into any) error {
	sch, ok := v.compiled[schema]
	if !ok {
		return fmt.Errorf("unknown schema %q", schema)
	}
	if len(raw) > v.maxBytes {
		return &InvalidError{Schema: schema, Reason: ReasonTooLarge, Detail: fmt.Sprintf("%d bytes, limit %d", len(raw), v.maxBytes)}
	}
	if !utf8.Valid(raw) {
		return &InvalidError{Schema: schema, Reason: ReasonInvalidUTF8}
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return &InvalidError{Schema: schema, Reason: ReasonInvalidJSON, Detail: jsonErrorDetail(err)}
	}
	if err := sch.Validate(inst); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			return &InvalidError{Schema: schema, Reason: ReasonSchema, Detail: v.describe(ve)}
		}
		return &InvalidError{Schema: schema, Reason: ReasonSchema}
	}
	if into == nil {
		return nil
	}
	// Fill the struct from the validated instance by exact key: Go's JSON
	// decoder matches keys case-insensitively, which would let an
	// unknown "ChAnnel" overwrite a validated "channel".
	obj, _ := inst.(map[string]any)
	switch dst := into.(type) {
	case *ClickEvent:
		*dst = clickFromInstance(obj)
	case *ChatMessage:
		*dst = chatFromInstance(obj)
	case *Alert:
		*dst = alertFromInstance(obj)
	case *V1Alert:
		// alert.v1 admits no unknown keys, so no case variant of a
		// known one can be present: the plain decoder is exact here.
		if err := json.Unmarshal(raw, dst); err != nil {
			return &InvalidError{Schema: schema, Reason: ReasonInvalidJSON, Detail: jsonErrorDetail(err)}
		}
	default:
		return fmt.Errorf("cannot decode into %T", into)
	}
	return nil
}

// jsonErrorDetail keeps the position of a syntax error and drops the
// parser's quote of the offending bytes.
func jsonErrorDetail(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	if errors.Is(err, errors.ErrUnsupported) {
		return "unsupported"
	}
	msg := err.Error()
	if strings.Contains(msg, "EOF") {
		return "unexpected end of input"
	}
	if strings.Contains(msg, "after top-level value") || strings.Contains(msg, "invalid character") {
		return "trailing or invalid data"
	}
	return "malformed"
}

// valueFreeKeywords produce messages that name the rule, never the
// rejected value; others (pattern, format, ...) would quote it.
var valueFreeKeywords = []string{"type", "enum", "const", "required", "minimum", "maximum", "minLength", "maxLength", "maxProperties", "additionalProperties", "minItems", "maxItems"}

func (v *Validator) describe(ve *jsonschema.ValidationError) string {
	var parts []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(parts) >= 3 {
			return
		}
		if len(e.Causes) > 0 {
			for _, c := range e.Causes {
				walk(c)
			}
			return
		}
		loc := "/" + strings.Join(e.InstanceLocation, "/")
		kw := e.ErrorKind.KeywordPath()
		keyword := "?"
		if len(kw) > 0 {
			keyword = kw[len(kw)-1]
		}
		part := loc + ": " + keyword
		if slices.Contains(valueFreeKeywords, keyword) {
			part = loc + ": " + e.ErrorKind.LocalizedString(v.printer)
		}
		parts = append(parts, part)
	}
	walk(ve)
	return strings.Join(parts, "; ")
}

func getString(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func getInt(m map[string]any, k string) int64 {
	n, _ := m[k].(json.Number)
	if i, err := n.Int64(); err == nil {
		return i
	}
	f, _ := n.Float64() // an integer written as 1.0 or 1e3
	return int64(f)
}

func getFloat(m map[string]any, k string) float64 {
	n, _ := m[k].(json.Number)
	f, _ := n.Float64()
	return f
}

func clickFromInstance(m map[string]any) ClickEvent {
	ev := ClickEvent{
		Schema: getString(m, "schema"), EventID: getString(m, "event_id"), UserID: getString(m, "user_id"),
		SessionID: getString(m, "session_id"), Type: getString(m, "type"), Page: getString(m, "page"),
		ItemID: getString(m, "item_id"), Amount: getFloat(m, "amount"), Currency: getString(m, "currency"),
		EventTime: getInt(m, "event_time"),
	}
	if props, ok := m["properties"].(map[string]any); ok {
		ev.Properties = make(map[string]any, len(props))
		for k, v := range props {
			if n, ok := v.(json.Number); ok {
				f, _ := n.Float64()
				v = f
			}
			ev.Properties[k] = v
		}
	}
	return ev
}

func chatFromInstance(m map[string]any) ChatMessage {
	return ChatMessage{
		Schema: getString(m, "schema"), EventID: getString(m, "event_id"), ConversationID: getString(m, "conversation_id"),
		UserID: getString(m, "user_id"), Sender: getString(m, "sender"), Channel: getString(m, "channel"),
		Text: getString(m, "text"), Language: getString(m, "language"), EventTime: getInt(m, "event_time"),
	}
}

func getFloatPtr(m map[string]any, k string) *float64 {
	if _, ok := m[k]; !ok {
		return nil
	}
	return new(getFloat(m, k))
}

func alertFromInstance(m map[string]any) Alert {
	a := Alert{
		Schema: getString(m, "schema"), AlertID: getString(m, "alert_id"), Type: getString(m, "type"),
		UserID: getString(m, "user_id"), OriginalUserID: getString(m, "original_user_id"),
		ConversationID: getString(m, "conversation_id"), Segment: getString(m, "segment"),
		Priority: Priority(getString(m, "priority")), Sentiment: getFloatPtr(m, "sentiment"),
		ChurnProbability: getFloatPtr(m, "churn_probability"), RollingSentiment: getFloatPtr(m, "rolling_sentiment"),
		Excerpt: getString(m, "excerpt"), FunnelStage: getString(m, "funnel_stage"),
		EventTime: getInt(m, "event_time"), DetectedAt: getInt(m, "detected_at"), RuleVersion: getString(m, "rule_version"),
	}
	reasons, _ := m["reasons"].([]any)
	for _, x := range reasons {
		r, _ := x.(map[string]any)
		reason := AlertReason{Code: getString(r, "code"), Text: getString(r, "text")}
		if params, ok := r["params"].(map[string]any); ok && len(params) > 0 {
			reason.Params = make(map[string]any, len(params))
			for k, v := range params {
				if n, ok := v.(json.Number); ok {
					f, _ := n.Float64()
					v = f
				}
				reason.Params[k] = v
			}
		}
		a.Reasons = append(a.Reasons, reason)
	}
	if src, ok := m["source"].(map[string]any); ok {
		a.Source = &AlertSource{Topic: getString(src, "topic"), Partition: int32(getInt(src, "partition")),
			Offset: getInt(src, "offset"), EventID: getString(src, "event_id")}
	}
	return a
}
