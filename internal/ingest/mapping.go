package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Mapping declares how a source's records become cxstream events: which
// source field (a dotted path into a JSON record, or a CSV column) fills
// each target field, value maps, the time format and constants.
type Mapping struct {
	// Fields: target field -> source path. Targets: event_id, user_id,
	// session_id, type, page, item_id, amount, currency, event_time and
	// properties.<name> (clickstream); event_id, conversation_id,
	// user_id, sender, channel, text, language, event_time (chat).
	// Without event_id the id is a hash of the record's bytes, so a
	// record sent twice is still a duplicate.
	Fields map[string]string `yaml:"fields"`
	// Values: target field -> source value -> value, e.g. type: {view:
	// product_view}. A value not listed is kept as it is.
	Values map[string]map[string]string `yaml:"values,omitempty"`
	// Constants: target field -> value for fields the source lacks, e.g.
	// channel: web.
	Constants map[string]string `yaml:"constants,omitempty"`
	// TimeFormat of event_time: epoch_s, epoch_ms, rfc3339, or a Go
	// layout such as "2006-01-02 15:04:05 MST". Empty: numbers above
	// 1e11 are milliseconds, smaller ones seconds, text RFC 3339.
	TimeFormat string `yaml:"time_format,omitempty"`
	// DefaultCurrency of a record with an amount and no currency.
	DefaultCurrency string `yaml:"default_currency,omitempty"`
}

// Validate reports a mapping that cannot work for kind.
func (m *Mapping) Validate(kind Kind) error {
	if len(m.Fields) == 0 {
		return errors.New("mapping: fields is empty")
	}
	required := []string{"user_id", "type", "event_time"}
	if kind == Chat {
		required = []string{"conversation_id", "user_id", "sender", "text", "event_time"}
	}
	for _, f := range required {
		if m.Fields[f] == "" && m.Constants[f] == "" {
			return fmt.Errorf("mapping: fields.%s: required (the source path of the %s)", f, f)
		}
	}
	for _, section := range []map[string]string{m.Fields, m.Constants} {
		for target := range section {
			if !targetAllowed(kind, target) {
				return fmt.Errorf("mapping: %q is not a %s field", target, kind)
			}
		}
	}
	for target := range m.Values {
		if !targetAllowed(kind, target) {
			return fmt.Errorf("mapping: values.%s: not a %s field", target, kind)
		}
	}
	switch m.TimeFormat {
	case "", "epoch_s", "epoch_ms", "rfc3339":
	default:
		// A Go layout must at least produce a time that reads back.
		ref := time.Date(2019, 10, 1, 13, 4, 5, 0, time.UTC)
		if _, err := time.Parse(m.TimeFormat, ref.Format(m.TimeFormat)); err != nil || !strings.ContainsAny(m.TimeFormat, "0123456789") {
			return fmt.Errorf("mapping: time_format: want epoch_s, epoch_ms, rfc3339 or a Go layout like \"2006-01-02 15:04:05 MST\", got %q", m.TimeFormat)
		}
	}
	if c := m.DefaultCurrency; c != "" && !isCurrency(c) {
		return fmt.Errorf("mapping: default_currency: want an ISO 4217 code such as EUR, got %q", c)
	}
	return nil
}

// EventNames are the names the mapping produces through its value map
// and constant of type.
func (m *Mapping) EventNames() []string {
	var out []string
	for _, v := range m.Values["type"] {
		out = append(out, v)
	}
	if c := m.Constants["type"]; c != "" {
		out = append(out, c)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// FieldError says which field of a record does not fit its format. It
// names fields, never values: records carry personal data.
type FieldError struct {
	Field  string // target field
	Source string // source path, when from a mapping
	Msg    string
}

func (e *FieldError) Error() string {
	if e.Source != "" && e.Source != e.Field {
		return fmt.Sprintf("%s (from %s): %s", e.Field, e.Source, e.Msg)
	}
	return e.Field + ": " + e.Msg
}

// Record is a source record: a JSON object, or a CSV row by column.
type Record interface {
	// Get returns the value at a source path, nil when absent.
	Get(path string) any
}

// JSONRecord is a decoded JSON object (numbers as json.Number).
type JSONRecord map[string]any

// Get follows a dotted path ("context.page.path", "items.0.id"); a key
// holding dots itself is found first.
func (r JSONRecord) Get(path string) any {
	if v, ok := r[path]; ok {
		return v
	}
	var cur any = map[string]any(r)
	for _, part := range strings.Split(path, ".") {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return nil
			}
			cur = c[i]
		default:
			return nil
		}
	}
	return cur
}

// CSVRecord is one CSV row by column name.
type CSVRecord map[string]string

// Get returns the column's value, nil when the column is absent or empty.
func (r CSVRecord) Get(path string) any {
	if v, ok := r[path]; ok && v != "" {
		return v
	}
	return nil
}

// apply builds the target object (cxstream's JSON shape) from rec.
// identity is the record's bytes, hashed into an event id when the
// mapping has none.
func (m *Mapping) apply(kind Kind, rec Record, identity []byte) (map[string]any, error) {
	out := map[string]any{}
	props := map[string]any{}
	set := func(target string, v any) {
		if name, ok := strings.CutPrefix(target, "properties."); ok {
			props[name] = v
			return
		}
		out[target] = v
	}
	for target, c := range m.Constants {
		set(target, c)
	}
	for target, path := range m.Fields {
		raw := rec.Get(path)
		if raw == nil {
			continue
		}
		v, err := m.convert(target, raw)
		if err != nil {
			return nil, &FieldError{Field: target, Source: path, Msg: err.Error()}
		}
		if v != nil {
			set(target, v)
		}
	}
	if len(props) > 0 {
		out["properties"] = props
	}
	if _, ok := out["event_id"]; !ok {
		out["event_id"] = HashID(identity)
	}
	for _, f := range []string{"user_id", "event_time"} {
		if _, ok := out[f]; !ok {
			return nil, &FieldError{Field: f, Source: m.Fields[f], Msg: "missing"}
		}
	}
	if kind == Click {
		if _, ok := out["amount"]; ok && out["currency"] == nil && m.DefaultCurrency != "" {
			out["currency"] = m.DefaultCurrency
		}
	}
	return out, nil
}

// convert turns a source value into the target field's type.
func (m *Mapping) convert(target string, raw any) (any, error) {
	switch target {
	case "event_time":
		return parseTime(raw, m.TimeFormat)
	case "amount":
		f, ok := toNumber(raw)
		if !ok {
			return nil, errors.New("not a number")
		}
		return f, nil
	}
	if strings.HasPrefix(target, "properties.") {
		switch x := raw.(type) {
		case json.Number:
			f, _ := x.Float64()
			return f, nil
		case bool, string:
			return x, nil
		case nil:
			return nil, nil
		}
		return nil, errors.New("not a string, number or boolean")
	}
	s, ok := toString(raw)
	if !ok {
		return nil, errors.New("not a string or number")
	}
	if vm, ok := m.Values[target]; ok {
		if mapped, ok := vm[s]; ok {
			s = mapped
		}
	}
	if target == "currency" {
		s = strings.ToUpper(strings.TrimSpace(s))
	}
	return s, nil
}

func toString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func toNumber(v any) (float64, bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = strings.TrimSpace(x)
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	default:
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil && !math.IsNaN(f) && !math.IsInf(f, 0)
}

// isoLayouts are the ISO 8601 shapes sources write.
var isoLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999Z07:00", "2006-01-02 15:04:05.999999999"}

// parseTime reads an event time in the given format into milliseconds.
func parseTime(raw any, format string) (int64, error) {
	switch format {
	case "epoch_s", "epoch_ms", "":
		if f, ok := toNumber(raw); ok {
			if format == "epoch_s" || (format == "" && math.Abs(f) < 1e11) {
				f *= 1000
			}
			if math.Abs(f) > 1<<53 {
				return 0, errors.New("out of range")
			}
			return int64(math.Round(f)), nil
		}
		if format != "" {
			return 0, fmt.Errorf("not %s", strings.ReplaceAll(format, "_", " "))
		}
	}
	s, ok := raw.(string)
	if !ok {
		return 0, errors.New("not a time")
	}
	s = strings.TrimSpace(s)
	if format == "" || format == "rfc3339" {
		for _, layout := range isoLayouts {
			if t, err := time.Parse(layout, s); err == nil {
				return t.UnixMilli(), nil
			}
		}
		return 0, errors.New("not an RFC 3339 / ISO 8601 time")
	}
	t, err := time.Parse(format, s)
	if err != nil {
		return 0, fmt.Errorf("does not match time_format %q", format)
	}
	return t.UnixMilli(), nil
}

// HashID derives an event id from a record's bytes: the same record sent
// twice gets the same id, so the processor counts it once.
func HashID(record []byte) string {
	sum := sha256.Sum256(record)
	return "h-" + hex.EncodeToString(sum[:16])
}
