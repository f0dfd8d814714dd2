package schemas

import "strconv"

// SegmentsV1 is the schema of segments.v1: one message per change of a
// user's segment, on the segments topic (cx.segments.v1), keyed by user.
const SegmentsV1 = "segments.v1"

// What triggered a segment change.
const (
	SegmentTriggerEvent = "event" // a click event of the user
	SegmentTriggerTime  = "time"  // event time passed a threshold (a buyer gone quiet)
)

// SegmentChange is a segments.v1 message: the user moved from one segment
// to another at EventTime (event time, ms).
type SegmentChange struct {
	Schema string `json:"schema"`
	// ChangeID is deterministic (SegmentChangeID): a replay re-emits the
	// same id, so subscribers can drop duplicates.
	ChangeID string `json:"change_id"`
	UserID   string `json:"user_id"`
	// From is "" for the user's first segment.
	From string `json:"from"`
	To   string `json:"to"`
	// Reasons are the conditions of the rule that matched (none when the
	// user fell to the fallback segment).
	Reasons   []SegmentReason `json:"reasons"`
	EventTime int64           `json:"event_time"`
	Trigger   string          `json:"trigger"`
}

// SegmentReason is one condition of the matching rule with the user's
// value, e.g. {"feature": "purchases", "op": ">=", "threshold": 3,
// "value": 5, "text": "purchases 5 >= 3"}.
type SegmentReason struct {
	Feature   string `json:"feature"`
	Op        string `json:"op"`
	Threshold any    `json:"threshold"`
	Value     any    `json:"value"`
	Text      string `json:"text"`
}

// SegmentChangeID derives a change's id from the user, the event time of
// the change and the segment entered: the same input always gives the
// same id.
func SegmentChangeID(userID string, eventTime int64, to string) string {
	return AlertID(SegmentsV1, userID, strconv.FormatInt(eventTime, 10)+"/"+to)
}
