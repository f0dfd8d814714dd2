package ingest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

func validator(t *testing.T) *schemas.Validator {
	t.Helper()
	v, err := schemas.NewValidator(0)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func decoder(t *testing.T, kind Kind, in Input) *Decoder {
	t.Helper()
	d, err := NewDecoder(kind, in, validator(t))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSegmentCalls(t *testing.T) {
	d := decoder(t, Click, Input{Format: FormatSegment, DefaultCurrency: "USD"})
	ev, err := d.Click([]byte(`{"type":"track","event":"Order Completed","messageId":"ajs-1","userId":"u-7","anonymousId":"anon-1",
		"timestamp":"2024-03-01T10:00:00.250Z","properties":{"order_id":"o-1","revenue":42.5,"currency":"eur","products":[{"product_id":"p"}],"coupon":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := time.Date(2024, 3, 1, 10, 0, 0, 250e6, time.UTC).UnixMilli()
	if ev.EventID != "ajs-1" || ev.UserID != "u-7" || ev.Type != "Order Completed" || ev.EventTime != want || ev.Amount != 42.5 || ev.Currency != "EUR" || ev.Properties["order_id"] != "o-1" {
		t.Fatalf("decoded %+v", ev)
	}
	if _, ok := ev.Properties["products"]; ok {
		t.Error("nested products kept in properties")
	}

	ev, err = d.Click([]byte(`{"type":"track","event":"Checkout Started","messageId":"m2","anonymousId":"anon-1","originalTimestamp":"2024-03-01T11:00:00+01:00","properties":{"total":10}}`))
	if err != nil {
		t.Fatal(err)
	}
	if ev.UserID != "anon-1" || ev.EventTime != time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC).UnixMilli() || ev.Amount != 10 || ev.Currency != "USD" {
		t.Fatalf("anonymous call, originalTimestamp, default currency: %+v", ev)
	}

	ev, err = d.Click([]byte(`{"type":"page","name":"Home","messageId":"m3","userId":42,"timestamp":"2024-03-01T10:00:00Z","properties":{"path":"/home","url":"https://x/home"}}`))
	if err != nil || ev.Type != schemas.ClickPageView || ev.Page != "/home" || ev.UserID != "42" {
		t.Fatalf("page call: %+v %v", ev, err)
	}
	ev, err = d.Click([]byte(`{"type":"identify","messageId":"m4","userId":"u-7","anonymousId":"anon-1","timestamp":"2024-03-01T10:00:00Z","traits":{"email":"a@b.c"}}`))
	if err != nil || ev.Type != SegmentIdentifyName || ev.UserID != "u-7" || len(ev.Properties) != 0 {
		t.Fatalf("identify call: %+v %v", ev, err)
	}
	ev, err = d.Click([]byte(`{"type":"screen","name":"Cart","messageId":"m5","userId":"u-7","timestamp":"2024-03-01T10:00:00Z"}`))
	if err != nil || ev.Type != SegmentScreenName || ev.Page != "Cart" {
		t.Fatalf("screen call: %+v %v", ev, err)
	}
	// Without a messageId the id is a hash of the bytes: the same call
	// sent again is the same event.
	raw := []byte(`{"type":"track","event":"Signed In","userId":"u-7","timestamp":"2024-03-01T10:00:00Z"}`)
	a, _ := d.Click(raw)
	b, _ := d.Click(raw)
	c, _ := d.Click([]byte(`{"type":"track","event":"Signed In","userId":"u-7","timestamp":"2024-03-01T10:00:01Z"}`))
	if a.EventID == "" || a.EventID != b.EventID || a.EventID == c.EventID {
		t.Fatalf("hashed ids: %q %q %q", a.EventID, b.EventID, c.EventID)
	}
}

// A call that does not fit is rejected with a reason naming the field,
// never quoting a value.
func TestSegmentRejectionsNameTheField(t *testing.T) {
	d := decoder(t, Click, Input{Format: FormatSegment})
	cases := map[string]struct {
		raw, reason, field string
	}{
		"no user":          {`{"type":"track","event":"X","timestamp":"2024-03-01T10:00:00Z"}`, string(ReasonFormat), "userId"},
		"no time":          {`{"type":"track","event":"X","userId":"MARKER"}`, string(ReasonFormat), "timestamp"},
		"bad time":         {`{"type":"track","event":"X","userId":"u","timestamp":"MARKER yesterday"}`, string(ReasonFormat), "timestamp"},
		"group call":       {`{"type":"group","groupId":"g","userId":"u","timestamp":"2024-03-01T10:00:00Z"}`, string(ReasonFormat), "type"},
		"no event":         {`{"type":"track","userId":"u","timestamp":"2024-03-01T10:00:00Z"}`, string(ReasonFormat), "event"},
		"revenue text":     {`{"type":"track","event":"Order Completed","userId":"u","timestamp":"2024-03-01T10:00:00Z","properties":{"revenue":"MARKER"}}`, string(ReasonFormat), "properties.revenue"},
		"control in name":  {`{"type":"track","event":"a\u0001MARKER","userId":"u","timestamp":"2024-03-01T10:00:00Z"}`, string(schemas.ReasonSchema), "/type"},
		"broken json":      {`{"type":"track", MARKER`, string(schemas.ReasonInvalidJSON), "syntax error"},
		"builtin purchase": {`{"type":"track","event":"purchase","userId":"u","timestamp":"2024-03-01T10:00:00Z","properties":{"revenue":3}}`, string(schemas.ReasonSchema), "currency"},
	}
	for name, c := range cases {
		_, err := d.Click([]byte(c.raw))
		var ie *schemas.InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%s: want an InvalidError, got %v", name, err)
			continue
		}
		if string(ie.Reason) != c.reason || !strings.Contains(ie.Detail, c.field) || strings.Contains(err.Error(), "MARKER") {
			t.Errorf("%s: got %s %q, want %s naming %s and no value", name, ie.Reason, ie.Detail, c.reason, c.field)
		}
	}
}

// The 2019 e-commerce export's CSV shape, read through a mapping.
func ecommerceMapping() *Mapping {
	return &Mapping{
		Fields: map[string]string{
			"type": "event_type", "event_time": "event_time", "user_id": "user_id", "session_id": "user_session",
			"item_id": "product_id", "amount": "price", "properties.brand": "brand", "properties.category": "category_code",
		},
		Values:          map[string]map[string]string{"type": {"view": "product_view", "cart": "add_to_cart", "purchase": "purchase"}},
		TimeFormat:      "2006-01-02 15:04:05 MST",
		DefaultCurrency: "USD",
	}
}

func TestMappingReadsACSVRow(t *testing.T) {
	d := decoder(t, Click, Input{Format: FormatMapping, Mapping: ecommerceMapping()})
	row := CSVRecord{"event_time": "2019-10-01 00:00:04 UTC", "event_type": "purchase", "product_id": "1004856", "category_code": "electronics.smartphone",
		"brand": "samsung", "price": "130.76", "user_id": "543272936", "user_session": "8187d148"}
	canon, err := d.CanonicalRecord(row, []byte("line-2"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := d.validator.DecodeClick(canon)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != "purchase" || ev.Amount != 130.76 || ev.Currency != "USD" || ev.UserID != "543272936" || ev.SessionID != "8187d148" ||
		ev.EventTime != time.Date(2019, 10, 1, 0, 0, 4, 0, time.UTC).UnixMilli() || ev.Properties["brand"] != "samsung" || ev.EventID != HashID([]byte("line-2")) {
		t.Fatalf("decoded %+v", ev)
	}
	row["event_type"] = "remove_from_cart" // not in the value map: kept as it is
	row["brand"] = ""                      // empty cell: left out
	canon, _ = d.CanonicalRecord(row, []byte("line-3"))
	if ev, err = d.validator.DecodeClick(canon); err != nil || ev.Type != "remove_from_cart" || ev.Properties["brand"] != nil {
		t.Fatalf("unmapped value: %+v %v", ev, err)
	}
	row["event_time"] = "01/10/2019"
	if _, err := d.CanonicalRecord(row, nil); err == nil || !strings.Contains(err.Error(), "event_time: does not match time_format") {
		t.Fatalf("bad time: %v", err)
	}
	row["event_time"] = "2019-10-01 00:00:04 UTC"
	delete(row, "user_id")
	if _, err := d.CanonicalRecord(row, nil); err == nil || !strings.Contains(err.Error(), "user_id") {
		t.Fatalf("missing user: %v", err)
	}
}

func TestMappingTimeFormats(t *testing.T) {
	at := time.Date(2024, 3, 1, 10, 0, 0, 0, time.UTC).UnixMilli()
	for _, c := range []struct {
		format, value string
	}{
		{"epoch_s", `1709287200`}, {"epoch_ms", `1709287200000`}, {"epoch_s", `"1709287200"`}, {"", `1709287200`}, {"", `1709287200000`},
		{"rfc3339", `"2024-03-01T11:00:00+01:00"`}, {"", `"2024-03-01T10:00:00Z"`}, {"02/01/2006 15:04", `"01/03/2024 10:00"`},
	} {
		m := &Mapping{Fields: map[string]string{"user_id": "u", "type": "t", "event_time": "ts"}, TimeFormat: c.format}
		d := decoder(t, Click, Input{Format: FormatMapping, Mapping: m})
		ev, err := d.Click([]byte(`{"u":"x","t":"Visited","ts":` + c.value + `}`))
		if err != nil || ev.EventTime != at {
			t.Errorf("%q %s: %d %v, want %d", c.format, c.value, ev.EventTime, err, at)
		}
	}
}

// A support tool's message payload (nested, with author roles) read into
// chat.v1.
func TestChatMapping(t *testing.T) {
	m := &Mapping{
		Fields: map[string]string{"event_id": "data.part.id", "conversation_id": "data.conversation.id", "user_id": "data.conversation.contact.external_id",
			"sender": "data.part.author.type", "text": "data.part.body", "event_time": "data.part.created_at"},
		Values:     map[string]map[string]string{"sender": {"user": "customer", "lead": "customer", "admin": "agent", "bot": "bot"}},
		Constants:  map[string]string{"channel": "web"},
		TimeFormat: "epoch_s",
	}
	d := decoder(t, Chat, Input{Format: FormatMapping, Mapping: m})
	msg, err := d.Chat([]byte(`{"topic":"conversation.user.replied","data":{"conversation":{"id":"c-9","contact":{"external_id":"u-7"}},
		"part":{"id":"p-1","author":{"type":"user"},"body":"still can't log in","created_at":1709287200}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if msg.EventID != "p-1" || msg.ConversationID != "c-9" || msg.UserID != "u-7" || msg.Sender != "customer" || msg.Text != "still can't log in" || msg.Channel != "web" {
		t.Fatalf("decoded %+v", msg)
	}
	_, err = d.Chat([]byte(`{"data":{"conversation":{"id":"c-9","contact":{"external_id":"u-7"}},"part":{"id":"p-2","author":{"type":"visitor"},"body":"MARKER","created_at":1709287200}}}`))
	if err == nil || !strings.Contains(err.Error(), "/sender") || strings.Contains(err.Error(), "MARKER") {
		t.Fatalf("unknown author role: %v", err)
	}
}

func TestInputValidation(t *testing.T) {
	good := ecommerceMapping()
	for name, c := range map[string]struct {
		in   Inputs
		want string
	}{
		"unknown format":  {Inputs{Clickstream: Input{Format: "avro"}}, "topics.input.clickstream: format"},
		"segment chat":    {Inputs{Chat: Input{Format: FormatSegment}}, "topics.input.chat: format: segment"},
		"mapping missing": {Inputs{Clickstream: Input{Format: FormatMapping}}, "needs mapping"},
		"no user field":   {Inputs{Clickstream: Input{Format: FormatMapping, Mapping: &Mapping{Fields: map[string]string{"type": "a", "event_time": "b"}}}}, "fields.user_id"},
		"bad target":      {Inputs{Clickstream: Input{Format: FormatMapping, Mapping: &Mapping{Fields: map[string]string{"user_id": "a", "type": "t", "event_time": "b", "sender": "s"}}}}, `"sender" is not a clickstream field`},
		"bad layout":      {Inputs{Clickstream: Input{Format: FormatMapping, Mapping: &Mapping{Fields: good.Fields, TimeFormat: "yyyy-mm-dd"}}}, "time_format"},
		"bad currency":    {Inputs{Clickstream: Input{Format: FormatSegment, DefaultCurrency: "usd"}}, "default_currency"},
		"missing file":    {Inputs{Clickstream: Input{Format: FormatMapping, MappingFile: "/nonexistent/m.yaml"}}, "mapping"},
	} {
		err := c.in.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to contain %q", name, err, c.want)
		}
	}
	if err := (Inputs{Clickstream: Input{Format: FormatMapping, Mapping: good}}).Validate(); err != nil {
		t.Errorf("a good mapping: %v", err)
	}
	if err := (Inputs{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
