package cli

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

func runArgs(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String() + errOut.String(), err
}

// Every example in deployments/examples loads with the command its files
// document, checked with --dry-run.
func TestExamplesLoadWithDryRun(t *testing.T) {
	ex := "../../deployments/examples/"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"replay", ex + "ecommerce-2019-sample.csv", "--mapping", ex + "ecommerce-2019.mapping.yaml", "--config", ex + "ecommerce-2019.cxstream.yaml"}, "dry run: 8 records valid, 0 skipped"},
		{[]string{"replay", ex + "segment-export-sample.jsonl", "--format", "segment", "--config", ex + "segment.cxstream.yaml"}, "dry run: 8 records valid, 0 skipped"},
		{[]string{"replay", ex + "support-chat-sample.jsonl", "--kind", "chat", "--mapping", ex + "support-chat.mapping.yaml"}, "dry run: 3 records valid, 0 skipped"},
	} {
		out, err := runArgs(t, append(c.args, "--dry-run", "-q")...)
		if err != nil || !strings.Contains(out, c.want) {
			t.Errorf("%v: %v\n%s", c.args, err, out)
		}
	}
}

// A file with bad rows: the good ones are sent keyed by user, the bad
// ones skipped and summarised by reason with their lines; a dry run sends
// nothing.
func TestReplaySkipsBadRecordsAndSendsTheRest(t *testing.T) {
	k := testenv.StartKafka(t, 2, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "2019-Oct.csv")
	testenv.Must(t, os.WriteFile(csvPath, []byte(`event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session
2019-10-01 00:00:01 UTC,view,1004856,2053013555631882655,electronics.smartphone,samsung,130.76,543272936,s-1
2019-10-01 00:00:02 UTC,view,1004856,2053013555631882655,electronics.smartphone,samsung,130.76,,s-1
2019-10-01 00:00:03 UTC,purchase,1004856,2053013555631882655,electronics.smartphone,samsung,lots,543272936,s-1
01/10/2019 00:00,cart,1004856,2053013555631882655,electronics.smartphone,samsung,130.76,543272936,s-1
2019-10-01 00:00:05 UTC,purchase,1004856,2053013555631882655,electronics.smartphone,samsung,130.76,543272936,s-1
`), 0o600), "csv")
	brokers := "--brokers=" + strings.Join(k.Brokers, ",")
	mapping := "--mapping=../../deployments/examples/ecommerce-2019.mapping.yaml"

	out, err := runArgs(t, "replay", csvPath, mapping, brokers, "--dry-run", "-q")
	if err != nil || !strings.Contains(out, "2 records valid, 3 skipped") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	for _, want := range []string{"user_id: missing  (lines 3)", "amount (from price): not a number  (lines 4)", "event_time: does not match time_format"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	out, err = runArgs(t, "replay", csvPath, mapping, brokers, "-q")
	if err != nil || !strings.Contains(out, "replayed 2 events (0 failed)") || !strings.Contains(out, "skipped 3 records") {
		t.Fatalf("replay: %v\n%s", err, out)
	}

	// A Segment JSON export: one JSON array, gzipped.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	ts := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	_, _ = zw.Write([]byte(`[{"type":"track","event":"Order Completed","messageId":"s-1","userId":"u-5","timestamp":"` + ts + `","properties":{"revenue":9.5,"currency":"EUR"}},
		{"type":"group","groupId":"g","userId":"u-5","timestamp":"` + ts + `"}]`))
	_ = zw.Close()
	segPath := filepath.Join(dir, "export.json.gz")
	testenv.Must(t, os.WriteFile(segPath, gz.Bytes(), 0o600), "gz")
	out, err = runArgs(t, "replay", segPath, "--format", "segment", brokers, "-q")
	if err != nil || !strings.Contains(out, "replayed 1 events") || !strings.Contains(out, "format_violation: type: want track, page, screen or identify  (lines 2)") {
		t.Fatalf("segment export: %v\n%s", err, out)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics("cx.clickstream.v1"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testenv.Must(t, err, "consumer")
	defer cl.Close()
	var recs []*kgo.Record
	testenv.Eventually(t, 10*time.Second, "3 records", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		recs = append(recs, cl.PollFetches(ctx).Records()...)
		return len(recs) >= 3
	})
	v, _ := schemas.NewValidator(0)
	var types []string
	for _, r := range recs {
		ev, err := v.DecodeClick(r.Value)
		if err != nil || string(r.Key) != ev.UserID || ev.UserID == "" {
			t.Fatalf("record %s keyed %q: %v", r.Value, r.Key, err)
		}
		types = append(types, ev.Type)
		if ev.Type == "purchase" && (ev.Amount != 130.76 || ev.Currency != "USD") {
			raw, _ := json.Marshal(ev)
			t.Errorf("purchase from the CSV: %s", raw)
		}
	}
	slices.Sort(types)
	if strings.Join(types, ",") != "Order Completed,product_view,purchase" {
		t.Errorf("types %v", types)
	}
}
