package sentiment

import (
	"fmt"
	"slices"

	"github.com/cxstream/cxstream/processors"
)

// stateCodecV1 is the first binary layout of State; a new layout gets a
// new number and UnmarshalBinary keeps reading the old ones.
const stateCodecV1 = 1

// AppendBinary implements encoding.BinaryAppender: the compact form the
// pipeline stores. Conversations are written in id order, so equal state
// is equal bytes.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateCodecV1)
	b = appendRolling(b, &s.User)
	b = processors.AppendUvarint(b, uint64(len(s.Conversations)))
	if len(s.Conversations) > 0 {
		ids := make([]string, 0, len(s.Conversations))
		for id := range s.Conversations {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			c := s.Conversations[id]
			if c == nil {
				c = &Conversation{}
			}
			b = processors.AppendString(b, id)
			b = appendRolling(b, &c.Rolling)
			b = processors.AppendVarint(b, c.StartedAt)
			b = processors.AppendVarint(b, c.LastAt)
			b = processors.AppendVarint(b, int64(c.Negatives))
			b = processors.AppendVarint(b, int64(c.AlertRank))
			b = processors.AppendVarint(b, c.AlertAt)
		}
	}
	b = processors.AppendVarints(b, s.NegativeAt)
	b = processors.AppendVarints(b, s.ContactAt)
	return processors.AppendVarint(b, s.Messages), nil
}

func appendRolling(b []byte, r *Rolling) []byte {
	b = processors.AppendFloat(b, r.Mean)
	b = processors.AppendFloat(b, r.Weight)
	b = processors.AppendVarint(b, r.At)
	b = processors.AppendVarint(b, int64(r.Count))
	b = processors.AppendUvarint(b, uint64(len(r.Recent)))
	for _, v := range r.Recent {
		b = processors.AppendFloat(b, v)
	}
	return b
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (s *State) UnmarshalBinary(data []byte) error {
	r := processors.NewReader(data)
	if v := r.Byte(); r.Err() == nil && v != stateCodecV1 {
		return fmt.Errorf("sentiment state: unknown binary layout %d", v)
	}
	var st State
	readRolling(r, &st.User)
	// A conversation takes at least 25 bytes (its id's length and two
	// floats of its rolling mean).
	if n := r.Count(25); n > 0 {
		st.Conversations = make(map[string]*Conversation, n)
		for range n {
			id := r.String()
			c := &Conversation{}
			readRolling(r, &c.Rolling)
			c.StartedAt = r.Varint()
			c.LastAt = r.Varint()
			c.Negatives = r.Int()
			c.AlertRank = r.Int()
			c.AlertAt = r.Varint()
			st.Conversations[id] = c
		}
	}
	st.NegativeAt = r.Varints()
	st.ContactAt = r.Varints()
	st.Messages = r.Varint()
	if err := r.Done(); err != nil {
		return fmt.Errorf("sentiment state: %w", err)
	}
	*s = st
	return nil
}

func readRolling(r *processors.Reader, ro *Rolling) {
	ro.Mean = r.Float()
	ro.Weight = r.Float()
	ro.At = r.Varint()
	ro.Count = r.Int()
	if n := r.Count(8); n > 0 {
		ro.Recent = make([]float64, n)
		for i := range ro.Recent {
			ro.Recent[i] = r.Float()
		}
	}
}
