package pipeline

import (
	"bytes"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/processors/segment"
	"github.com/cxstream/cxstream/processors/sentiment"
	"github.com/cxstream/cxstream/schemas"
)

// neutralScorer scores every text 0; the codec tests need the sentiment
// processor's state, not its model.
type neutralScorer struct{}

func (neutralScorer) Score(string) sentiment.Score { return sentiment.Score{} }

// plainState has no binary codec: it is stored as JSON inside a binary
// document.
type plainState struct {
	Count int      `json:"count"`
	Tags  []string `json:"tags,omitempty"`
}

// plain is a clickstream processor whose state has no codec.
type plain struct{}

func (plain) Name() string              { return "plain" }
func (plain) Stream() processors.Stream { return processors.Clicks }
func (plain) NewState() any             { return &plainState{} }
func (plain) Apply(*processors.User, processors.Event) processors.Effects {
	return processors.Effects{}
}
func (plain) Describe(*processors.User, *processors.Facts) {}

func docProcessors(t testing.TB) []processors.Processor {
	t.Helper()
	fp, err := funnel.New(funnel.DefaultDefinitions(), 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := churn.New(churn.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	sp, err := sentiment.NewProcessor(sentiment.DefaultConfig(), neutralScorer{})
	if err != nil {
		t.Fatal(err)
	}
	sg, err := segment.New(segment.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return []processors.Processor{funnel.NewKeyed(fp, schemas.Vocabulary{}), churn.NewKeyed(cp), sentiment.NewKeyed(sp, ""), segment.NewKeyed(sg), plain{}}
}

// sampleUser is a user with every kind of field set on both sides.
func sampleUser(procs []processors.Processor) (states []any, click, chat side) {
	u := processors.NewUser("u1", procs, nil)
	states = u.States()
	*u.State("funnel").(*funnel.State) = funnel.State{"purchase": {
		Base:   funnel.Attempt{Step: 1, EnteredAt: 1_700_000_000_000, StepAt: []int64{1_700_000_000_000, 1_700_000_060_000}, Reached: []int{3, 2, 1, 0}, ByHour: map[int64]*funnel.HourCounts{472222: {Entries: 2, Conversions: 1}}},
		Recent: []funnel.RecentEvent{{ID: "e-1", At: 1_700_000_100_000, Matches: 3, Hold: "s1"}},
		Now:    funnel.Attempt{Step: 2, Conversions: 1, AbandonedAt: []int64{1_699_000_000_000}},
		Stats:  funnel.ConversionStat{TotalMs: 12345, Last: []int64{600_000}},
	}}
	ch := u.State("churn").(*churn.State)
	ch.FirstSeen, ch.LastSeen, ch.Purchases, ch.Spend, ch.LastPurchase = 1_690_000_000_000, 1_700_000_100_000, 2, 59.95, 1_699_999_000_000
	ch.Day, ch.Days[0], ch.Days[6], ch.Days[34] = 19675, 4, 1, 7
	ch.LastScore, ch.LastAlertAt, ch.CheckedUntil, ch.ResurrectedAt = 0.4375, 1_699_000_000_001, 1_700_000_200_000, -5
	ch.ContactAt = []int64{1_699_500_000_000, 1_699_600_000_000}
	se := u.State("sentiment").(*sentiment.State)
	se.User = sentiment.Rolling{Mean: -0.31, Weight: 2.5, At: 1_700_000_000_500, Count: 3, Recent: []float64{-0.5, 0.1, -0.54}}
	se.Conversations = map[string]*sentiment.Conversation{
		"c-2": {Rolling: sentiment.Rolling{Mean: 0.2, Weight: 1, At: 5, Count: 1}, StartedAt: 4, LastAt: 5, AlertRank: -1},
		"c-1": {Rolling: sentiment.Rolling{Mean: -0.9, Weight: 1.5, At: 9, Count: 2, Recent: []float64{-0.9}}, StartedAt: 7, LastAt: 9, Negatives: 2, AlertRank: 3, AlertAt: 9},
	}
	se.NegativeAt, se.ContactAt, se.Messages = []int64{9, 10}, []int64{4, 7}, 11
	*u.State("segment").(*segment.State) = segment.State{Segment: "engaged", Since: 1_699_000_000_000, At: 1_700_000_100_000, Due: 1_701_000_000_000,
		Next:  &segment.Foreseen{At: 1_701_000_000_000, To: "at_risk", Reasons: []schemas.SegmentReason{{Feature: "days_since_last_click", Op: ">=", Threshold: 14.0, Value: 14.0, Text: "no click for 14 days"}}},
		Props: map[string]segment.Prop{"plan": {V: "pro", T: 1_699_000_000_000}}, Recent: []segment.Change{{To: "new", At: 1_690_000_000_000}, {From: "new", To: "engaged", At: 1_699_000_000_000}}}
	*u.State("plain").(*plainState) = plainState{Count: 7, Tags: []string{"a", "b"}}
	click = side{Fence: map[string]int64{"cx.clickstream.v1/3": 41, "cx.clickstream.v1/1": 7}, Seen: []uint64{1, 1 << 63, 12345678901234567}, Latest: 1_700_000_100_000}
	chat = side{Fence: map[string]int64{"cx.chat.v1/0": 0}, Latest: 1_700_000_000_500}
	return states, click, chat
}

// roundTrip encodes both sides of a user and decodes them into fresh
// states.
func roundTrip(t *testing.T, enc Encoding, procs []processors.Processor, states []any, sides [2]side) (docs [2][]byte, got []any, gotSides [2]side) {
	t.Helper()
	got = processors.NewUser("u1", procs, nil).States()
	for i, stream := range []processors.Stream{processors.Clicks, processors.Chats} {
		data, err := encodeDoc(enc, stream, procs, states, &sides[i], 0)
		if err != nil {
			t.Fatalf("%s: encode %s: %v", enc, stream, err)
		}
		if err := decodeDoc(data, stream, procs, got, &gotSides[i]); err != nil {
			t.Fatalf("%s: decode %s: %v", enc, stream, err)
		}
		docs[i] = data
	}
	return docs, got, gotSides
}

func TestStateDocumentsRoundTripInBothEncodings(t *testing.T) {
	procs := docProcessors(t)
	states, click, chat := sampleUser(procs)
	binDocs, binStates, binSides := roundTrip(t, EncodingBinary, procs, states, [2]side{click, chat})
	jsonDocs, jsonStates, jsonSides := roundTrip(t, EncodingJSON, procs, states, [2]side{click, chat})
	for i := range states {
		if !reflect.DeepEqual(binStates[i], states[i]) {
			t.Errorf("%s after the binary round trip:\n got %+v\nwant %+v", procs[i].Name(), binStates[i], states[i])
		}
		if !reflect.DeepEqual(jsonStates[i], states[i]) {
			t.Errorf("%s after the JSON round trip:\n got %+v\nwant %+v", procs[i].Name(), jsonStates[i], states[i])
		}
	}
	for i, want := range [2]side{click, chat} {
		if !reflect.DeepEqual(binSides[i], want) || !reflect.DeepEqual(jsonSides[i], want) {
			t.Errorf("side %d: binary %+v, json %+v, want %+v", i, binSides[i], jsonSides[i], want)
		}
		if binDocs[i][0] != binaryDocV1 || jsonDocs[i][0] != '{' {
			t.Errorf("side %d: documents start %q and %q", i, binDocs[i][0], jsonDocs[i][0])
		}
		// The binary form is what it is for: smaller.
		if len(binDocs[i]) >= len(jsonDocs[i]) {
			t.Errorf("side %d: binary document %d bytes, JSON %d", i, len(binDocs[i]), len(jsonDocs[i]))
		}
		// Readers outside the pipeline see the same document either way.
		j, err := DocJSON(binDocs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(j, jsonDocs[i]) {
			t.Errorf("side %d: DocJSON of the binary document\n%s\nwant the JSON document\n%s", i, j, jsonDocs[i])
		}
	}
	t.Logf("click document: %d bytes binary, %d JSON; chat: %d, %d", len(binDocs[0]), len(jsonDocs[0]), len(binDocs[1]), len(jsonDocs[1]))

	for _, docs := range [][2][]byte{binDocs, jsonDocs} {
		c, err := DecodeClick(docs[0])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c.Churn, *states[1].(*churn.State)) || !reflect.DeepEqual(c.Funnel, *states[0].(*funnel.State)) || !reflect.DeepEqual(c.Fence, click.Fence) {
			t.Errorf("DecodeClick of %q...: %+v", docs[0][:1], c)
		}
		h, err := DecodeChat(docs[1])
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(h.Sentiment, *states[2].(*sentiment.State)) || !reflect.DeepEqual(h.Fence, chat.Fence) {
			t.Errorf("DecodeChat of %q...: %+v", docs[1][:1], h)
		}
	}
}

// Equal state is equal bytes: map order must not leak into documents
// (the invariant tests compare stored documents byte for byte).
func TestBinaryDocumentsAreDeterministic(t *testing.T) {
	procs := docProcessors(t)
	states, click, chat := sampleUser(procs)
	first, err := encodeDoc(EncodingBinary, processors.Chats, procs, states, &chat, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		again, err := encodeDoc(EncodingBinary, processors.Chats, procs, states, &chat, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, again) {
			t.Fatalf("two encodings of the same state differ:\n%x\n%x", first, again)
		}
	}
	multi := click // two partitions in the fence
	a, _ := encodeDoc(EncodingBinary, processors.Clicks, procs, states, &multi, 0)
	for range 20 {
		if b, _ := encodeDoc(EncodingBinary, processors.Clicks, procs, states, &multi, 0); !bytes.Equal(a, b) {
			t.Fatalf("two encodings of the same fence differ")
		}
	}
}

func TestCorruptBinaryDocumentsAreErrors(t *testing.T) {
	procs := docProcessors(t)
	states, click, _ := sampleUser(procs)
	data, err := encodeDoc(EncodingBinary, processors.Clicks, procs, states, &click, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{{2}, {binaryDocV1}, data[:len(data)-1], append(bytes.Clone(data), 0xff)} {
		var sd side
		got := processors.NewUser("u1", procs, nil).States()
		if err := decodeDoc(bad, processors.Clicks, procs, got, &sd); err == nil {
			t.Errorf("%x...: decoded without error", bad[:min(len(bad), 8)])
		}
	}
}

// FuzzDecodeDoc: no stored document, however corrupt, crashes a reader;
// one that decodes re-encodes to a canonical form that decodes to itself.
func FuzzDecodeDoc(f *testing.F) {
	procs := docProcessors(f)
	states, click, chat := sampleUser(procs)
	for _, enc := range []Encoding{EncodingBinary, EncodingJSON} {
		for i, stream := range []processors.Stream{processors.Clicks, processors.Chats} {
			sd := [2]side{click, chat}[i]
			data, err := encodeDoc(enc, stream, procs, states, &sd, 0)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte{})
	f.Add([]byte(`{"fence":{"t/0":1},"churn":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = DecodeClick(data)
		_, _ = DecodeChat(data)
		_, _ = DocJSON(data)
		for _, stream := range []processors.Stream{processors.Clicks, processors.Chats} {
			var sd side
			got := processors.NewUser("u", procs, nil).States()
			if err := decodeDoc(data, stream, procs, got, &sd); err != nil {
				continue
			}
			once, err := encodeDoc(EncodingBinary, stream, procs, got, &sd, 0)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			var sd2 side
			got2 := processors.NewUser("u", procs, nil).States()
			if err := decodeDoc(once, stream, procs, got2, &sd2); err != nil {
				t.Fatalf("a document the pipeline wrote does not decode: %v\n%x", err, once)
			}
			twice, err := encodeDoc(EncodingBinary, stream, procs, got2, &sd2, 0)
			if err != nil {
				t.Fatalf("re-encode: %v", err)
			}
			if !bytes.Equal(once, twice) {
				t.Fatalf("not canonical:\n%x\n%x", once, twice)
			}
		}
	})
}

// The cost of reading and writing a user's click document, the larger
// one, in each encoding.
func BenchmarkDoc(b *testing.B) {
	procs := docProcessors(b)
	states, click, _ := sampleUser(procs)
	for _, enc := range []Encoding{EncodingBinary, EncodingJSON} {
		data, err := encodeDoc(enc, processors.Clicks, procs, states, &click, 0)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("encode/"+string(enc), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := encodeDoc(enc, processors.Clicks, procs, states, &click, len(data)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(data)), "bytes/doc")
		})
		b.Run("decode/"+string(enc), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var sd side
				got := processors.NewUser("u1", procs, nil).States()
				if err := decodeDoc(data, processors.Clicks, procs, got, &sd); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// fill sets every field reachable from v to a value of its own (slices and
// maps get two elements, pointers a value), so a codec that forgets a
// field, or a field added without its codec, shows in a round trip.
func fill(v reflect.Value, n *int) {
	*n++
	switch v.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(*n) * 1_000_003)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(*n) * 7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(*n) + 0.25)
	case reflect.String:
		v.SetString("s" + strconv.Itoa(*n))
	case reflect.Interface: // a JSON value: a string survives as one
		v.Set(reflect.ValueOf("s" + strconv.Itoa(*n)))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), n)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), n)
			}
		}
	case reflect.Array:
		for i := range v.Len() {
			fill(v.Index(i), n)
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		for i := range 2 {
			fill(v.Index(i), n)
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		for range 2 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, n)
			fill(e, n)
			v.SetMapIndex(k, e)
		}
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// Every field of every state with a binary codec survives the round
// trip: a field added to a state without its codec fails here.
func TestStateCodecsKeepEveryField(t *testing.T) {
	for _, st := range []interface {
		AppendBinary([]byte) ([]byte, error)
		UnmarshalBinary([]byte) error
	}{&churn.State{}, &sentiment.State{}, &funnel.State{}, &segment.State{}} {
		n := 0
		fill(reflect.ValueOf(st).Elem(), &n)
		data, err := st.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		got := reflect.New(reflect.TypeOf(st).Elem()).Interface().(interface{ UnmarshalBinary([]byte) error })
		if err := got.UnmarshalBinary(data); err != nil {
			t.Fatalf("%T: %v", st, err)
		}
		if !reflect.DeepEqual(got, st) {
			t.Errorf("%T does not survive its codec:\n got %+v\nwant %+v", st, got, st)
		}
		if again, _ := got.(interface{ AppendBinary([]byte) ([]byte, error) }).AppendBinary(nil); !bytes.Equal(again, data) {
			t.Errorf("%T: re-encoding gives other bytes", st)
		}
	}
}
