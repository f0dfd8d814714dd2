package churn

import (
	"fmt"

	"github.com/cxstream/cxstream/processors"
)

// stateCodecV1 is the first binary layout of State; a new layout gets a
// new number and UnmarshalBinary keeps reading the old ones.
const stateCodecV1 = 1

// AppendBinary implements encoding.BinaryAppender: the compact form the
// pipeline stores.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateCodecV1)
	b = processors.AppendVarint(b, s.FirstSeen)
	b = processors.AppendVarint(b, s.LastSeen)
	b = processors.AppendVarint(b, int64(s.Purchases))
	b = processors.AppendFloat(b, s.Spend)
	b = processors.AppendVarint(b, s.LastPurchase)
	b = processors.AppendVarint(b, s.Day)
	for _, n := range s.Days {
		b = processors.AppendVarint(b, int64(n))
	}
	b = processors.AppendFloat(b, s.LastScore)
	b = processors.AppendVarint(b, s.LastAlertAt)
	b = processors.AppendVarint(b, s.CheckedUntil)
	b = processors.AppendVarint(b, s.ResurrectedAt)
	return processors.AppendVarints(b, s.ContactAt), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (s *State) UnmarshalBinary(data []byte) error {
	r := processors.NewReader(data)
	if v := r.Byte(); r.Err() == nil && v != stateCodecV1 {
		return fmt.Errorf("churn state: unknown binary layout %d", v)
	}
	var st State
	st.FirstSeen = r.Varint()
	st.LastSeen = r.Varint()
	st.Purchases = r.Int()
	st.Spend = r.Float()
	st.LastPurchase = r.Varint()
	st.Day = r.Varint()
	for i := range st.Days {
		st.Days[i] = r.Int()
	}
	st.LastScore = r.Float()
	st.LastAlertAt = r.Varint()
	st.CheckedUntil = r.Varint()
	st.ResurrectedAt = r.Varint()
	st.ContactAt = r.Varints()
	if err := r.Done(); err != nil {
		return fmt.Errorf("churn state: %w", err)
	}
	*s = st
	return nil
}
