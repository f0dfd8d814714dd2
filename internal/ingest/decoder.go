package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	// goccy/go-json: the collector parses and re-encodes every call;
	// encoding/json's reflection was half its CPU.
	json "github.com/goccy/go-json"

	"github.com/cxstream/cxstream/schemas"
)

// Decoder reads one topic's records in its format.
type Decoder struct {
	kind      Kind
	format    Format
	mapping   *Mapping
	currency  string
	validator *schemas.Validator
}

// NewDecoder returns a decoder for records of kind in the input's format.
func NewDecoder(kind Kind, in Input, v *schemas.Validator) (*Decoder, error) {
	if v == nil {
		return nil, errors.New("ingest: a validator is required")
	}
	if err := in.validate(kind); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	m, err := in.Resolve()
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}
	d := &Decoder{kind: kind, format: in.Format, mapping: m, currency: in.DefaultCurrency, validator: v}
	if d.format == "" {
		d.format = FormatCxstream
	}
	return d, nil
}

// Format is the decoder's format.
func (d *Decoder) Format() Format { return d.format }

// Kind is the decoder's stream.
func (d *Decoder) Kind() Kind { return d.kind }

func (d *Decoder) invalid(reason schemas.Reason, detail string) error {
	return &schemas.InvalidError{Schema: string(d.format), Reason: reason, Detail: detail}
}

// Canonical converts a record to cxstream's JSON message (unvalidated).
// For the cxstream format it returns raw unchanged. Errors are
// *schemas.InvalidError whose detail names the field.
func (d *Decoder) Canonical(raw []byte) ([]byte, error) {
	if d.format == FormatCxstream {
		return raw, nil
	}
	if !utf8.Valid(raw) {
		return nil, d.invalid(schemas.ReasonInvalidUTF8, "")
	}
	rec, err := parseObject(raw)
	if err != nil {
		return nil, d.invalid(schemas.ReasonInvalidJSON, err.Error())
	}
	return d.CanonicalRecord(rec, raw)
}

// CanonicalRecord converts a parsed record (a JSON object or a CSV row);
// identity is hashed into the event id when the record has none.
func (d *Decoder) CanonicalRecord(rec Record, identity []byte) ([]byte, error) {
	var obj map[string]any
	var err error
	switch d.format {
	case FormatSegment:
		jr, ok := rec.(JSONRecord)
		if !ok {
			return nil, d.invalid(ReasonFormat, "segment calls are JSON objects")
		}
		obj, err = fromSegment(jr, identity, d.currency)
	case FormatMapping:
		obj, err = d.mapping.apply(d.kind, rec, identity)
	default:
		return nil, d.invalid(ReasonFormat, "records in the cxstream format are not converted")
	}
	if err != nil {
		var fe *FieldError
		if errors.As(err, &fe) {
			return nil, d.invalid(ReasonFormat, fe.Error())
		}
		return nil, d.invalid(ReasonFormat, "unreadable record")
	}
	if d.kind == Click && obj["schema"] == nil {
		obj["schema"] = schemas.ClickstreamV2
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, d.invalid(ReasonFormat, "cannot encode the converted record")
	}
	return out, nil
}

// Click decodes and validates a clickstream record.
func (d *Decoder) Click(raw []byte) (schemas.ClickEvent, error) {
	canon, err := d.Canonical(raw)
	if err != nil {
		return schemas.ClickEvent{}, err
	}
	return d.validator.DecodeClick(canon)
}

// Chat decodes and validates a chat record.
func (d *Decoder) Chat(raw []byte) (schemas.ChatMessage, error) {
	canon, err := d.Canonical(raw)
	if err != nil {
		return schemas.ChatMessage{}, err
	}
	return d.validator.DecodeChat(canon)
}

// Validate decodes a canonical record of the decoder's kind and returns
// its user id.
func (d *Decoder) Validate(canon []byte) (string, error) {
	if d.kind == Chat {
		m, err := d.validator.DecodeChat(canon)
		return m.UserID, err
	}
	ev, err := d.validator.DecodeClick(canon)
	return ev.UserID, err
}

// parseObject reads one JSON object, numbers kept exact.
func parseObject(raw []byte) (JSONRecord, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			return nil, fmt.Errorf("syntax error at byte %d", se.Offset)
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return nil, errors.New("unexpected end of JSON input")
		}
		return nil, errors.New("not a JSON object")
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	if dec.More() {
		return nil, errors.New("trailing data after the object")
	}
	return JSONRecord(m), nil
}

// ParseObject reads one JSON object with numbers kept exact, for callers
// that inspect a record before converting it (the collector's batches).
func ParseObject(raw []byte) (JSONRecord, error) { return parseObject(raw) }

// IDs returns a Segment call's userId and anonymousId.
func IDs(rec JSONRecord) SegmentIDs { return segmentIDs(rec) }
