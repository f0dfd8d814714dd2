package funnel

import (
	"fmt"

	"github.com/cxstream/cxstream/processors"
)

// stateCodecV1 is the first binary layout of State; a new layout gets a
// new number and UnmarshalBinary keeps reading the old ones. A field added
// to State, Progress, Attempt, RecentEvent, Tally or GroupCounts must be
// added here too: the pipeline's codec test fills every field and fails
// on one that does not survive the round trip.
const stateCodecV1 = 1

// AppendBinary implements encoding.BinaryAppender: the compact form the
// pipeline stores. Maps are written in key order, so equal state is equal
// bytes.
func (s *State) AppendBinary(b []byte) ([]byte, error) {
	b = append(b, stateCodecV1)
	return processors.AppendMap(b, *s, processors.AppendString, appendProgress), nil
}

// UnmarshalBinary implements encoding.BinaryUnmarshaler.
func (s *State) UnmarshalBinary(data []byte) error {
	r := processors.NewReader(data)
	if v := r.Byte(); r.Err() == nil && v != stateCodecV1 {
		return fmt.Errorf("funnel state: unknown binary layout %d", v)
	}
	st := State(processors.ReadMap(r, 2, (*processors.Reader).String, readProgress))
	if err := r.Done(); err != nil {
		return fmt.Errorf("funnel state: %w", err)
	}
	*s = st
	return nil
}

// present writes whether a pointer is set; a nil one is written as
// nothing more.

func appendProgress(b []byte, p *Progress) []byte {
	if b = processors.AppendBool(b, p != nil); p == nil {
		return b
	}
	b = appendAttempt(b, &p.Base)
	b = processors.AppendUvarint(b, uint64(len(p.Recent)))
	for i := range p.Recent {
		e := &p.Recent[i]
		b = processors.AppendString(b, e.ID)
		b = processors.AppendVarint(b, e.At)
		b = processors.AppendUvarint(b, uint64(e.Matches))
		b = processors.AppendBool(b, e.Excluded)
		b = processors.AppendString(b, e.Hold)
		b = processors.AppendMap(b, e.Touch, processors.AppendString, processors.AppendString)
	}
	b = appendAttempt(b, &p.Now)
	b = processors.AppendVarint(b, p.Stats.TotalMs)
	return processors.AppendVarints(b, p.Stats.Last)
}

func readProgress(r *processors.Reader) *Progress {
	if !r.Bool() {
		return nil
	}
	p := &Progress{}
	readAttempt(r, &p.Base)
	// An event takes at least 6 bytes (empty id, time, matches, flag,
	// empty hold, no values).
	if n := r.Count(6); n > 0 {
		p.Recent = make([]RecentEvent, n)
		for i := range p.Recent {
			e := &p.Recent[i]
			e.ID = r.String()
			e.At = r.Varint()
			e.Matches = uint32(r.Uvarint())
			e.Excluded = r.Bool()
			e.Hold = r.String()
			e.Touch = processors.ReadMap(r, 2, (*processors.Reader).String, (*processors.Reader).String)
		}
	}
	readAttempt(r, &p.Now)
	p.Stats.TotalMs = r.Varint()
	p.Stats.Last = r.Varints()
	return p
}

func appendAttempt(b []byte, a *Attempt) []byte {
	b = processors.AppendVarint(b, int64(a.Step))
	b = processors.AppendUvarint(b, uint64(a.Done))
	b = processors.AppendVarint(b, a.EnteredAt)
	b = processors.AppendVarints(b, a.StepAt)
	b = processors.AppendString(b, a.Hold)
	b = processors.AppendVarint(b, a.LastAt)
	b = processors.AppendVarints(b, a.Reached)
	b = processors.AppendVarint(b, int64(a.Conversions))
	b = processors.AppendVarint(b, int64(a.Abandonments))
	b = processors.AppendVarints(b, a.AbandonedAt)
	b = processors.AppendMap(b, a.ByHour, processors.AppendVarint, appendHourCounts)
	b = processors.AppendMap(b, a.First, processors.AppendString, processors.AppendString)
	b = processors.AppendMap(b, a.Last, processors.AppendString, processors.AppendString)
	return processors.AppendMap(b, a.Groups, processors.AppendString, appendTally)
}

func readAttempt(r *processors.Reader, a *Attempt) {
	a.Step = r.Int()
	a.Done = uint32(r.Uvarint())
	a.EnteredAt = r.Varint()
	a.StepAt = r.Varints()
	a.Hold = r.String()
	a.LastAt = r.Varint()
	a.Reached = r.Ints()
	a.Conversions = r.Int()
	a.Abandonments = r.Int()
	a.AbandonedAt = r.Varints()
	a.ByHour = processors.ReadMap(r, 2, (*processors.Reader).Varint, readHourCounts)
	a.First = processors.ReadMap(r, 2, (*processors.Reader).String, (*processors.Reader).String)
	a.Last = processors.ReadMap(r, 2, (*processors.Reader).String, (*processors.Reader).String)
	a.Groups = processors.ReadMap(r, 2, (*processors.Reader).String, readTally)
}

func appendHourCounts(b []byte, c *HourCounts) []byte {
	if b = processors.AppendBool(b, c != nil); c == nil {
		return b
	}
	b = processors.AppendVarint(b, int64(c.Entries))
	b = processors.AppendVarint(b, int64(c.Conversions))
	return processors.AppendVarint(b, int64(c.Abandonments))
}

func readHourCounts(r *processors.Reader) *HourCounts {
	if !r.Bool() {
		return nil
	}
	return &HourCounts{Entries: r.Int(), Conversions: r.Int(), Abandonments: r.Int()}
}

func appendTally(b []byte, t *Tally) []byte {
	if b = processors.AppendBool(b, t != nil); t == nil {
		return b
	}
	b = processors.AppendMap(b, t.First, processors.AppendString, appendGroupCounts)
	return processors.AppendMap(b, t.Last, processors.AppendString, appendGroupCounts)
}

func readTally(r *processors.Reader) *Tally {
	if !r.Bool() {
		return nil
	}
	t := &Tally{}
	t.First = processors.ReadMap(r, 2, (*processors.Reader).String, readGroupCounts)
	t.Last = processors.ReadMap(r, 2, (*processors.Reader).String, readGroupCounts)
	return t
}

func appendGroupCounts(b []byte, c *GroupCounts) []byte {
	if b = processors.AppendBool(b, c != nil); c == nil {
		return b
	}
	b = processors.AppendVarint(b, int64(c.Attempts))
	b = processors.AppendVarints(b, c.Reached)
	b = processors.AppendVarint(b, int64(c.Conversions))
	b = processors.AppendVarint(b, c.TotalMs)
	return processors.AppendVarints(b, c.Took)
}

func readGroupCounts(r *processors.Reader) *GroupCounts {
	if !r.Bool() {
		return nil
	}
	c := &GroupCounts{}
	c.Attempts = r.Int()
	c.Reached = r.Ints()
	c.Conversions = r.Int()
	c.TotalMs = r.Varint()
	c.Took = r.Varints()
	return c
}
