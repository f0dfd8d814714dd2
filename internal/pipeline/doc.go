package pipeline

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	json "github.com/goccy/go-json"

	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/processors/segment"
	"github.com/cxstream/cxstream/processors/sentiment"
)

// A user's document of one stream holds the pipeline's own fields (fence,
// seen, latest) and, under each processor's name, the state of every
// processor reading that stream. It is written in one of two encodings;
// both are always read, told apart by the first byte:
//
// JSON (first byte '{'), the original form:
//
//	{"fence":{"cx.clickstream.v1/0":41},"seen":[...],"latest":1700000000000,
//	 "funnel":{...},"churn":{...}}
//
// binary (first byte binaryDocV1), compact and cheap to read and write:
//
//	version byte
//	fence:  uvarint count, then per entry: uvarint length + partition, varint offset (in partition order)
//	seen:   uvarint count, then 8 bytes per hash (little endian)
//	latest: varint
//	then per processor, to the end: uvarint length + name, kind byte
//	(partBinary: the state's own codec; partJSON: its JSON), 4-byte
//	little-endian length, the bytes.
//
// A processor's state uses its own codec when it implements
// encoding.BinaryAppender and encoding.BinaryUnmarshaler, else JSON, so a
// new processor needs no codec; the kind byte lets a state gain or change
// its codec while old documents are still read.

// Encoding is how the pipeline writes state documents.
type Encoding string

// The encodings; the zero value is binary.
const (
	EncodingBinary Encoding = "binary"
	EncodingJSON   Encoding = "json"
)

// binaryDocV1 is the first byte of a binary document: its layout version.
const binaryDocV1 = 1

// The kinds of a processor's part of a binary document.
const (
	partJSON   = 0
	partBinary = 1
)

// ErrDocEncoding: a stored document is neither JSON nor a known binary
// layout.
var ErrDocEncoding = errors.New("unknown state document encoding")

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
	if len(data) == 0 {
		sd.Fence = map[string]int64{}
		return nil
	}
	if data[0] == '{' {
		return decodeJSONDoc(data, stream, procs, states, sd)
	}
	return parseBinaryDoc(data, sd, func(name []byte, kind byte, part []byte) error {
		for i, p := range procs {
			if p.Stream() == stream && string(name) == p.Name() {
				if err := decodePart(states[i], kind, part); err != nil {
					return fmt.Errorf("%s: %w", p.Name(), err)
				}
				return nil
			}
		}
		return nil // a processor no longer registered
	})
}

func decodeJSONDoc(data []byte, stream processors.Stream, procs []processors.Processor, states []any, sd *side) error {
	sd.Fence = map[string]int64{}
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

// decodePart reads a processor's part of a binary document into state.
func decodePart(state any, kind byte, part []byte) error {
	switch kind {
	case partBinary:
		u, ok := state.(encoding.BinaryUnmarshaler)
		if !ok {
			return errors.New("stored in a binary form this state cannot read")
		}
		return u.UnmarshalBinary(part)
	case partJSON:
		if bytes.Equal(part, []byte("null")) {
			return nil
		}
		return json.Unmarshal(part, state)
	}
	return fmt.Errorf("unknown part kind %d", kind)
}

// parseBinaryDoc reads a binary document's side into sd and calls part
// with each processor's part, in stored order.
func parseBinaryDoc(data []byte, sd *side, part func(name []byte, kind byte, data []byte) error) error {
	if len(data) == 0 || data[0] != binaryDocV1 {
		return ErrDocEncoding
	}
	r := processors.NewReader(data[1:])
	n := r.Count(2)
	sd.Fence = make(map[string]int64, n)
	for range n {
		k := r.String()
		sd.Fence[k] = r.Varint()
	}
	if n := r.Count(8); n > 0 {
		sd.Seen = make([]uint64, n)
		for i := range sd.Seen {
			sd.Seen[i] = r.Fixed64()
		}
	}
	sd.Latest = r.Varint()
	for r.Err() == nil && r.Len() > 0 {
		name := r.Bytes()
		kind := r.Byte()
		body := r.Bytes32()
		if r.Err() != nil {
			break
		}
		if err := part(name, kind, body); err != nil {
			return err
		}
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("state document: %w", err)
	}
	return nil
}

// encodeDoc writes one document: the side's fields, then each of the
// stream's processors' state in registration order, so equal state is
// equal bytes. sizeHint is the document's last encoded length.
func encodeDoc(enc Encoding, stream processors.Stream, procs []processors.Processor, states []any, sd *side, sizeHint int) ([]byte, error) {
	if enc == EncodingJSON {
		return encodeJSONDoc(stream, procs, states, sd)
	}
	b := make([]byte, 0, max(sizeHint+64, 256))
	b = append(b, binaryDocV1)
	b = processors.AppendUvarint(b, uint64(len(sd.Fence)))
	switch len(sd.Fence) {
	case 0:
	case 1:
		for k, v := range sd.Fence {
			b = processors.AppendString(b, k)
			b = processors.AppendVarint(b, v)
		}
	default:
		keys := make([]string, 0, len(sd.Fence))
		for k := range sd.Fence {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			b = processors.AppendString(b, k)
			b = processors.AppendVarint(b, sd.Fence[k])
		}
	}
	b = processors.AppendUvarint(b, uint64(len(sd.Seen)))
	for _, h := range sd.Seen {
		b = binary.LittleEndian.AppendUint64(b, h)
	}
	b = processors.AppendVarint(b, sd.Latest)
	for i, p := range procs {
		if p.Stream() != stream {
			continue
		}
		b = processors.AppendString(b, p.Name())
		var err error
		if a, ok := states[i].(encoding.BinaryAppender); ok {
			b = append(b, partBinary, 0, 0, 0, 0)
			at := len(b)
			b, err = a.AppendBinary(b)
			if err == nil {
				binary.LittleEndian.PutUint32(b[at-4:at], uint32(len(b)-at))
			}
		} else {
			var part []byte
			if part, err = json.Marshal(states[i]); err == nil {
				b = append(b, partJSON)
				b = binary.LittleEndian.AppendUint32(b, uint32(len(part)))
				b = append(b, part...)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p.Name(), err)
		}
	}
	return b, nil
}

func encodeJSONDoc(stream processors.Stream, procs []processors.Processor, states []any, sd *side) ([]byte, error) {
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

// DecodeClick reads a stored clickstream document, in either encoding.
func DecodeClick(data []byte) (ClickDoc, error) { return decodeStored[ClickDoc](data, clickParts) }

// DecodeChat reads a stored chat document, in either encoding.
func DecodeChat(data []byte) (ChatDoc, error) { return decodeStored[ChatDoc](data, chatParts) }

// clickParts and chatParts map the documents' JSON names to their field
// indexes, the fence's included: worked out once, not per document.
var clickParts, chatParts = partFields(reflect.TypeFor[ClickDoc]()), partFields(reflect.TypeFor[ChatDoc]())

func partFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "" && name != "-" {
			out[name] = i
		}
	}
	return out
}

// decodeStored reads a stored document of either encoding into a T
// (ClickDoc or ChatDoc, whose fields parts indexes): each binary part into
// the field its JSON tag names, as the JSON encoding would.
func decodeStored[T any](data []byte, parts map[string]int) (T, error) {
	var d T
	if len(data) == 0 {
		return d, nil
	}
	if data[0] == '{' {
		err := json.Unmarshal(data, &d)
		return d, err
	}
	v := reflect.ValueOf(&d).Elem()
	var sd side
	err := parseBinaryDoc(data, &sd, func(name []byte, kind byte, part []byte) error {
		if i, ok := parts[string(name)]; ok && string(name) != "fence" {
			return decodePart(v.Field(i).Addr().Interface(), kind, part)
		}
		return nil
	})
	v.Field(parts["fence"]).Set(reflect.ValueOf(sd.Fence))
	return d, err
}

// DocJSON returns a stored document as JSON, in the layout of the JSON
// encoding, for people and tools that read documents raw (`cxstream user
// --raw`). A binary part of a processor this package does not know is
// given as {"binary":"<base64>"}.
func DocJSON(data []byte) ([]byte, error) {
	if len(data) == 0 || data[0] == '{' {
		return data, nil
	}
	var sd side
	type field struct {
		name  string
		value json.RawMessage
	}
	var parts []field
	err := parseBinaryDoc(data, &sd, func(name []byte, kind byte, part []byte) error {
		var v json.RawMessage
		st := knownState(string(name))
		switch {
		case kind == partJSON:
			v = append(json.RawMessage(nil), part...)
		case st != nil:
			if err := decodePart(st, kind, part); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			var err error
			if v, err = json.Marshal(st); err != nil {
				return err
			}
		default:
			v, _ = json.Marshal(map[string][]byte{"binary": part})
		}
		parts = append(parts, field{string(name), v})
		return nil
	})
	if err != nil {
		return nil, err
	}
	fence, err := json.Marshal(sd.Fence)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteString(`{"fence":`)
	b.Write(fence)
	if len(sd.Seen) > 0 {
		seen, _ := json.Marshal(sd.Seen)
		b.WriteString(`,"seen":`)
		b.Write(seen)
	}
	if sd.Latest != 0 {
		b.WriteString(`,"latest":`)
		b.WriteString(strconv.FormatInt(sd.Latest, 10))
	}
	for _, f := range parts {
		name, _ := json.Marshal(f.name)
		b.WriteByte(',')
		b.Write(name)
		b.WriteByte(':')
		b.Write(f.value)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// knownState returns a new state of the built-in processor of that name
// (a field of ClickDoc or ChatDoc), or nil, for DocJSON.
func knownState(name string) any {
	if name == "fence" {
		return nil
	}
	if i, ok := clickParts[name]; ok {
		return reflect.New(reflect.TypeFor[ClickDoc]().Field(i).Type).Interface()
	}
	if i, ok := chatParts[name]; ok {
		return reflect.New(reflect.TypeFor[ChatDoc]().Field(i).Type).Interface()
	}
	return nil
}
