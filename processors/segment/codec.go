package segment

import (
	"fmt"

	json "github.com/goccy/go-json"

	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/schemas"
)

// stateCodecV1 is the first binary layout of State; a new layout gets a
// new number and UnmarshalBinary keeps reading the old ones. Documents
// written before it hold the segment state as JSON, which the pipeline
// still reads.
const stateCodecV1 = 1

// AppendBinary implements encoding.BinaryAppender: the compact form the
// pipeline stores.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateCodecV1)
	b = processors.AppendString(b, s.Segment)
	b = processors.AppendVarint(b, s.Since)
	b = processors.AppendVarint(b, s.At)
	b = processors.AppendVarint(b, s.Due)
	b = processors.AppendBool(b, s.Next != nil)
	if s.Next != nil {
		b = processors.AppendVarint(b, s.Next.At)
		b = processors.AppendString(b, s.Next.To)
		b = processors.AppendUvarint(b, uint64(len(s.Next.Reasons)))
		for _, r := range s.Next.Reasons {
			var err error
			if b, err = appendReason(b, r); err != nil {
				return nil, err
			}
		}
	}
	b = processors.AppendMap(b, s.Props, processors.AppendString, func(b []byte, p Prop) []byte {
		return processors.AppendVarint(processors.AppendString(b, p.V), p.T)
	})
	b = processors.AppendUvarint(b, uint64(len(s.Recent)))
	for _, c := range s.Recent {
		b = processors.AppendString(b, c.From)
		b = processors.AppendString(b, c.To)
		b = processors.AppendVarint(b, c.At)
	}
	return b, nil
}

// appendReason writes a reason. Its threshold and value (a number, text
// or flag from the configuration and the user's facts) carry their type;
// another type is written as JSON, and reads back as from the JSON form.
func appendReason(b []byte, r schemas.SegmentReason) ([]byte, error) {
	b = processors.AppendString(b, r.Feature)
	b = processors.AppendString(b, r.Op)
	var err error
	if b, err = appendValue(b, r.Threshold); err != nil {
		return nil, err
	}
	if b, err = appendValue(b, r.Value); err != nil {
		return nil, err
	}
	return processors.AppendString(b, r.Text), nil
}

// The kinds of value appendValue writes.
const (
	valueNull byte = iota
	valueNumber
	valueText
	valueFlag
	valueJSON
)

func appendValue(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, valueNull), nil
	case float64:
		return processors.AppendFloat(append(b, valueNumber), x), nil
	case string:
		return processors.AppendString(append(b, valueText), x), nil
	case bool:
		return processors.AppendBool(append(b, valueFlag), x), nil
	}
	data, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("segment state: %w", err)
	}
	return processors.AppendString(append(b, valueJSON), string(data)), nil
}

func readValue(r *processors.Reader) (any, error) {
	switch kind := r.Byte(); kind {
	case valueNull:
		return nil, nil
	case valueNumber:
		return r.Float(), nil
	case valueText:
		return r.String(), nil
	case valueFlag:
		return r.Bool(), nil
	case valueJSON:
		var v any
		if err := json.Unmarshal([]byte(r.String()), &v); err != nil && r.Err() == nil {
			return nil, fmt.Errorf("segment state: %w", err)
		}
		return v, nil
	default:
		if r.Err() != nil {
			return nil, nil // Done reports it
		}
		return nil, fmt.Errorf("segment state: unknown value kind %d", kind)
	}
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler. Empty lists and
// maps come back nil, as from the JSON form.
func (s *State) UnmarshalBinary(data []byte) error {
	r := processors.NewReader(data)
	if v := r.Byte(); r.Err() == nil && v != stateCodecV1 {
		return fmt.Errorf("segment state: unknown binary layout %d", v)
	}
	var st State
	st.Segment = r.String()
	st.Since = r.Varint()
	st.At = r.Varint()
	st.Due = r.Varint()
	if r.Bool() {
		st.Next = &Foreseen{At: r.Varint(), To: r.String()}
		if n := r.Count(5); n > 0 { // the least a reason takes
			st.Next.Reasons = make([]schemas.SegmentReason, 0, n)
			for range n {
				reason := schemas.SegmentReason{Feature: r.String(), Op: r.String()}
				var err error
				if reason.Threshold, err = readValue(r); err != nil {
					return err
				}
				if reason.Value, err = readValue(r); err != nil {
					return err
				}
				reason.Text = r.String()
				st.Next.Reasons = append(st.Next.Reasons, reason)
			}
		}
	}
	st.Props = processors.ReadMap(r, 2, (*processors.Reader).String, func(r *processors.Reader) Prop {
		return Prop{V: r.String(), T: r.Varint()}
	})
	if n := r.Count(3); n > 0 {
		st.Recent = make([]Change, 0, n)
		for range n {
			st.Recent = append(st.Recent, Change{From: r.String(), To: r.String(), At: r.Varint()})
		}
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("segment state: %w", err)
	}
	*s = st
	return nil
}
