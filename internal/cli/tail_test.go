package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/testenv"
)

// tail reads v2 and v1 alerts alike, shows an erasure tombstone as a line,
// and reports (without quoting) a record that is not an alert.
func TestTailShowsV2V1AndErasures(t *testing.T) {
	k := testenv.StartKafka(t, 1, "cx.alerts.v2")
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	testenv.Must(t, err, "client")
	defer cl.Close()
	v2, err := os.ReadFile("../../schemas/testdata/valid/alert.v2.negative_chat.json")
	testenv.Must(t, err, "example")
	v1, err := os.ReadFile("../../schemas/testdata/valid/alert.v1.churn_risk.json")
	testenv.Must(t, err, "example")
	testenv.Must(t, cl.ProduceSync(context.Background(),
		&kgo.Record{Topic: "cx.alerts.v2", Key: []byte("u-42"), Value: v2},
		&kgo.Record{Topic: "cx.alerts.v2", Key: []byte("u-42"), Value: []byte(`{"schema":"alert.v2","text":"MARKER-SECRET"}`)},
		&kgo.Record{Topic: "cx.alerts.v2", Key: []byte("u-42"), Value: v1},
		&kgo.Record{Topic: "cx.alerts.v2", Key: []byte("u-gone"), Headers: []kgo.RecordHeader{{Key: "cx-erasure", Value: []byte("true")}}},
	).FirstErr(), "produce")

	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"tail", "--from-beginning", "-n", "3", "--brokers", strings.Join(k.Brokers, ",")})
	testenv.Must(t, root.Execute(), "tail")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got:\n%s", out.String())
	}
	for i, want := range []string{"negative_chat", "churn_risk", "ERASED"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q lacks %q", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[0], "sentiment -0.82") || !strings.Contains(lines[0], "very negative message") {
		t.Errorf("v2 line %q", lines[0])
	}
	if !strings.Contains(lines[1], "churn 0.74") || !strings.Contains(lines[1], "abandoned checkout") {
		t.Errorf("v1 line %q", lines[1])
	}
	if !strings.Contains(lines[2], "u-gone") {
		t.Errorf("erasure line %q", lines[2])
	}
	if !strings.Contains(errOut.String(), "skipped record cx.alerts.v2/0@1") || strings.Contains(errOut.String(), "MARKER") {
		t.Errorf("stderr %q", errOut.String())
	}

	out.Reset()
	root = NewRoot(&out, &errOut)
	root.SetArgs([]string{"tail", "--from-beginning", "-n", "2", "--json", "--type", "churn_risk", "--brokers", strings.Join(k.Brokers, ",")})
	testenv.Must(t, root.Execute(), "tail --json")
	lines = strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[0] != strings.TrimSpace(string(v1)) || !strings.Contains(lines[1], `"erasure":true`) {
		t.Errorf("tail --json --type churn_risk:\n%s", out.String())
	}
}
