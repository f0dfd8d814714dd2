package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/testenv"
)

// A CSV export and a JSON-lines file replayed into Kafka become state and
// alerts, and tail shows the alert.
func TestReplayAndTail(t *testing.T) {
	k := testenv.StartKafka(t, 2, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	r := testenv.StartRedis(t)
	cfg := config.Default()
	cfg.Kafka.Brokers, cfg.Redis.Addrs, cfg.HTTP.Addr = k.Brokers, []string{r.Addr}, ""
	p, err := runner.New(cfg, zap.NewNop(), runner.Options{})
	testenv.Must(t, err, "processor")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	dir := t.TempDir()
	now := time.Now().Add(-time.Minute)
	csvPath := filepath.Join(dir, "orders.csv")
	os.WriteFile(csvPath, []byte(fmt.Sprintf("id,customer,action,ts,amount,currency,properties.category\n"+
		"o1,carl,product_view,%s,,,course\n"+
		"o2,carl,add_to_cart,%d,,,course\n"+
		"o3,carl,checkout_start,%d,,,course\n"+
		"o4,carl,purchase,%d,59.5,EUR,course\n",
		now.Format(time.RFC3339), now.UnixMilli()+1000, now.UnixMilli()+2000, now.UnixMilli()+3000)), 0o600)
	jsonPath := filepath.Join(dir, "chats.jsonl")
	os.WriteFile(jsonPath, []byte(fmt.Sprintf(`{"event_id":"m1","conversation_id":"k1","user_id":"carl","sender":"customer","text":"I was charged twice and nobody answers, I want my money back","event_time":%d}`+"\n", now.UnixMilli()+4000)), 0o600)

	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		root := NewRoot(&out, &errOut)
		root.SetArgs(append(args, "--brokers", strings.Join(k.Brokers, ","), "--redis", r.Addr))
		root.SetContext(context.Background())
		testenv.Must(t, root.ExecuteContext(context.Background()), strings.Join(args, " ")+": "+errOut.String())
		return out.String()
	}
	if out := run("replay", csvPath, "--kind", "clickstream", "--map", "event_id=id,user_id=customer,type=action,event_time=ts", "-q"); !strings.Contains(out, "replayed 4 events (0 failed)") {
		t.Fatalf("replay csv: %s", out)
	}
	if out := run("replay", jsonPath, "-q"); !strings.Contains(out, "replayed 1 events") {
		t.Fatalf("replay jsonl: %s", out)
	}
	testenv.Eventually(t, 15*time.Second, "5 events applied", func() bool { return p.Metrics.Sum("cx_events_applied_total", nil) >= 5 })
	if d := p.Metrics.Sum("cx_deadletter_total", nil); d != 0 {
		t.Fatalf("%v replayed events were dead-lettered", d)
	}
	docs, err := p.Store.Load(context.Background(), []string{"carl"})
	testenv.Must(t, err, "load")
	carl, err := pipeline.DocJSON(docs["carl"].Click.Data)
	testenv.Must(t, err, "state as JSON")
	if !bytes.Contains(carl, []byte(`"p":1,"m":59.5`)) {
		t.Errorf("carl's purchase from the CSV is not in the state: %s", carl)
	}
	out := run("tail", "--from-beginning", "-n", "1")
	if !strings.Contains(out, "negative_chat") || !strings.Contains(out, "carl") {
		t.Fatalf("tail printed %q", out)
	}
	out = run("tail", "--from-beginning", "-n", "1", "--json")
	if !strings.HasPrefix(strings.TrimSpace(out), `{"schema":"alert.v2"`) {
		t.Fatalf("tail --json printed %q", out)
	}
}
