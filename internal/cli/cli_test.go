package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

func TestSentimentCommandWritesTabSeparatedScores(t *testing.T) {
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetIn(strings.NewReader("I was charged twice and I want my money back\nok\nthanks, that fixed it!\n"))
	root.SetArgs([]string{"sentiment"})
	if err := root.Execute(); err != nil {
		t.Fatal(err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %q", out.String())
	}
	for i, label := range []string{"negative", "neutral", "positive"} {
		f := strings.Split(lines[i], "\t")
		if len(f) != 4 || f[1] != label {
			t.Errorf("line %d: %q, want label %s", i, lines[i], label)
		}
	}
}

func TestBadConfigGivesOneClearLine(t *testing.T) {
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"run", "--redis", "localhost"})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), `"localhost" has no port`) {
		t.Fatalf("got %v", err)
	}
}

func TestUserShowsStateAndForgetErasesIt(t *testing.T) {
	r := testenv.StartRedis(t)
	ctx := context.Background()
	st := state.New(r.Client, state.Options{})
	testenv.Must(t, st.Save(ctx, []state.Write{
		{User: "u-1", Side: state.Click, Data: []byte(`{"fence":{"cx.clickstream.v1/0":5}}`)},
		{User: "u-1", Side: state.Chat, Data: []byte(`{"fence":{"cx.chat.v1/0":7}}`)},
		{User: "u-2", Side: state.Click, Data: []byte(`{}`)},
	}), "seed state")
	testenv.Must(t, st.SaveWithTimers(ctx, []state.Timer{{Index: st.TimerIndex("cx.clickstream.v1", 3), User: "u-1", Due: 5}, {Index: st.TimerIndex("cx.clickstream.v1", 3), User: "u-2", Due: 6}}, nil), "timers")
	testenv.Must(t, alertsink.NewQueue(r.Client, "cx").Push(ctx, []*schemas.Alert{{Type: schemas.AlertNegativeChat, UserID: "u-1", ConversationID: "c", Priority: schemas.PriorityHigh, EventTime: 1}}), "queue")

	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		root := NewRoot(&out, &errOut)
		root.SetArgs(append(args, "--redis", r.Addr))
		err := root.Execute()
		return out.String(), err
	}
	out, err := run("user", "u-1", "--raw")
	if err != nil || !strings.Contains(out, `"cx.chat.v1/0": 7`) || !strings.Contains(out, `"click_version": 1`) {
		t.Fatalf("user: %v\n%s", err, out)
	}
	if out, err = run("user", "u-1"); err != nil || !strings.Contains(out, "User u-1") || !strings.Contains(out, "Support queue") {
		t.Fatalf("user summary: %v\n%s", err, out)
	}
	if out, err = run("user", "u-1", "--json"); err != nil || !strings.Contains(out, `"schema": "user-view.v1"`) {
		t.Fatalf("user --json: %v\n%s", err, out)
	}
	out, err = run("forget", "u-1", "--no-tombstone")
	if err != nil || !strings.Contains(out, "deleted 3 keys and timers, 1 queue entries and 0 identity link keys") {
		t.Fatalf("forget: %v %s", err, out)
	}
	if keys := r.Client.Keys(ctx, "*u-1*").Val(); len(keys) != 0 {
		t.Fatalf("left behind: %v", keys)
	}
	if n := r.Client.ZCard(ctx, st.TimerIndex("cx.clickstream.v1", 3)).Val(); n != 1 {
		t.Fatalf("timers left: %d, want only u-2's", n)
	}
	if n := r.Client.HLen(ctx, "cx:{queue}:items").Val(); n != 0 {
		t.Fatalf("queue items left: %d", n)
	}
	if n := r.Client.Exists(ctx, st.Key("u-2", state.Click)).Val(); n != 1 {
		t.Fatal("forget erased another user")
	}
	if _, err := run("user", "u-1"); err == nil || !strings.Contains(err.Error(), "no state") {
		t.Fatalf("user after forget: %v", err)
	}
	// Erasing a user with nothing stored says so instead of a silent count.
	out, err = run("forget", "never-seen", "--no-tombstone")
	if err != nil || !strings.Contains(out, `no state, timers, queue entries or identity links stored for user "never-seen"`) {
		t.Fatalf("forget of a never-seen user: %v %s", err, out)
	}
}

func TestQualityReportCountsDeadLettersPerTopicAndReason(t *testing.T) {
	k := testenv.StartKafka(t, 2, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	testenv.Must(t, err, "client")
	defer cl.Close()
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: "cx.clickstream.v1", Key: []byte{byte(i)}, Value: []byte("{}")})
	}
	for i := range 4 {
		recs = append(recs, &kgo.Record{Topic: "cx.chat.v1", Key: []byte{byte(i)}, Value: []byte("{}")})
	}
	dead := func(src, reason, offset string) *kgo.Record {
		return &kgo.Record{Topic: "cx.deadletter.v1", Value: []byte("x"), Headers: []kgo.RecordHeader{{Key: "cx-source-topic", Value: []byte(src)}, {Key: "cx-reason", Value: []byte(reason)},
			{Key: "cx-source-partition", Value: []byte("0")}, {Key: "cx-source-offset", Value: []byte(offset)}}}
	}
	recs = append(recs, dead("cx.clickstream.v1", "schema_violation", "1"), dead("cx.clickstream.v1", "schema_violation", "2"), dead("cx.clickstream.v1", "late", "3"), dead("cx.chat.v1", "invalid_json", "1"))
	// Defect 9: a second consumer group dead-letters the same records
	// again; each source record still counts once.
	recs = append(recs, dead("cx.clickstream.v1", "schema_violation", "1"), dead("cx.clickstream.v1", "late", "3"), dead("cx.chat.v1", "invalid_json", "1"))
	testenv.Must(t, cl.ProduceSync(context.Background(), recs...).FirstErr(), "produce")

	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"quality", "--window", "10m", "--brokers", strings.Join(k.Brokers, ",")})
	testenv.Must(t, root.Execute(), "quality")
	for _, want := range []string{
		"cx.clickstream.v1: 10 records, 3 dead letters (30.000%)",
		"schema_violation          2  20.000%",
		"late                      1  10.000%",
		"cx.chat.v1: 4 records, 1 dead letters (25.000%)",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
}

func TestMissingConfigFileStopsTheCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"run", "--config", "/nope.yaml"})
	err := root.Execute()
	if err == nil || err.Error() != "config /nope.yaml: no such file" {
		t.Fatalf("got %v", err)
	}
}

func TestBadVariableStopsTheCommand(t *testing.T) {
	t.Setenv("CXSTREAM_REDIS_CLUSTER", "yes")
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"run"})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), "CXSTREAM_REDIS_CLUSTER") {
		t.Fatalf("got %v", err)
	}
}
