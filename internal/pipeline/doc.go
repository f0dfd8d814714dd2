package pipeline

import (
	"bytes"
	"fmt"
	"strconv"

	json "github.com/goccy/go-json"

	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/processors/segment"
	"github.com/cxstream/cxstream/processors/sentiment"
)

// A user's document of one stream is a JSON object: the pipeline's own
// fields (fence, seen, latest) and, under each processor's name, the state
// of every processor reading that stream:
//
//	{"fence":{"cx.clickstream.v1/0":41},"seen":[...],"latest":1700000000000,
//	 "funnel":{...},"churn":{...}}

// side is the pipeline's part of one of a user's documents.
type side struct {
	// Fence is the last offset applied per input partition.
	Fence map[string]int64
	// Seen holds hashes of the user's latest event ids, to count an
	// event sent twice upstream once.
	Seen []uint64
	// Latest is the largest event time applied: an event older than it
	// by more than the allowed lateness is late.
	Latest int64
	dirty  bool
}

// sideIndex numbers the two documents of a user.
func sideIndex(s processors.Stream) int {
	if s == processors.Chats {
		return 1
	}
	return 0
}

var storeSides = [2]state.Side{state.Click, state.Chat}

// decodeDoc reads one stored document into the side and the states of
// the processors (procs[i] for states[i]) that read its stream.
func decodeDoc(data []byte, stream processors.Stream, procs []processors.Processor, states []any, sd *side) error {
	sd.Fence = map[string]int64{}
	if len(data) == 0 {
		return nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return err
	}
	if raw := fields["fence"]; raw != nil {
		if err := json.Unmarshal(raw, &sd.Fence); err != nil {
			return fmt.Errorf("fence: %w", err)
		}
		if sd.Fence == nil {
			sd.Fence = map[string]int64{}
		}
	}
	if raw := fields["seen"]; raw != nil {
		if err := json.Unmarshal(raw, &sd.Seen); err != nil {
			return fmt.Errorf("seen: %w", err)
		}
	}
	if raw := fields["latest"]; raw != nil {
		if err := json.Unmarshal(raw, &sd.Latest); err != nil {
			return fmt.Errorf("latest: %w", err)
		}
	}
	for i, p := range procs {
		if p.Stream() != stream {
			continue
		}
		if raw := fields[p.Name()]; raw != nil && !bytes.Equal(raw, []byte("null")) {
			if err := json.Unmarshal(raw, states[i]); err != nil {
				return fmt.Errorf("%s: %w", p.Name(), err)
			}
		}
	}
	return nil
}

// encodeDoc writes one document: the side's fields, then each of the
// stream's processors' state in registration order, so equal state is
// equal bytes.
func encodeDoc(stream processors.Stream, procs []processors.Processor, states []any, sd *side) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"fence":`)
	fence, err := json.Marshal(sd.Fence)
	if err != nil {
		return nil, err
	}
	b.Write(fence)
	if len(sd.Seen) > 0 {
		b.WriteString(`,"seen":[`)
		for i, h := range sd.Seen {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatUint(h, 10))
		}
		b.WriteByte(']')
	}
	if sd.Latest != 0 {
		b.WriteString(`,"latest":`)
		b.WriteString(strconv.FormatInt(sd.Latest, 10))
	}
	for i, p := range procs {
		if p.Stream() != stream {
			continue
		}
		part, err := json.Marshal(states[i])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name(), err)
		}
		b.WriteString(`,"`)
		b.WriteString(p.Name())
		b.WriteString(`":`)
		b.Write(part)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// ClickDoc is the clickstream document as the built-in processors store
// it, for readers (user view, reports) that need no pipeline.
type ClickDoc struct {
	Fence  map[string]int64 `json:"fence"`
	Funnel funnel.State     `json:"funnel,omitempty"`
	Churn  churn.State      `json:"churn"`
	// Segment is absent while the segment processor is off.
	Segment segment.State `json:"segment"`
}

// ChatDoc is the chat document as the built-in processors store it.
type ChatDoc struct {
	Fence     map[string]int64 `json:"fence"`
	Sentiment sentiment.State  `json:"sentiment"`
}

// DecodeClick reads a stored clickstream document.
func DecodeClick(data []byte) (ClickDoc, error) {
	var d ClickDoc
	if len(data) == 0 {
		return d, nil
	}
	err := json.Unmarshal(data, &d)
	return d, err
}

// DecodeChat reads a stored chat document.
func DecodeChat(data []byte) (ChatDoc, error) {
	var d ChatDoc
	if len(data) == 0 {
		return d, nil
	}
	err := json.Unmarshal(data, &d)
	return d, err
}
