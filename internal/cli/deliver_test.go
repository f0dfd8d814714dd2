package cli

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/deliver"
	"github.com/cxstream/cxstream/internal/testenv"
)

// `cxstream deliver` reads its destinations from the config (the secret
// from the environment), signs, delivers, and stops on cancel.
func TestDeliverCommandDeliversSignedAlerts(t *testing.T) {
	k := testenv.StartKafka(t, 1, "cx.alerts.v2", "cx.deliver.deadletter.helpdesk")
	example, err := os.ReadFile("../../schemas/testdata/valid/alert.v2.negative_chat.json")
	testenv.Must(t, err, "example")
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...))
	testenv.Must(t, err, "producer")
	defer cl.Close()
	testenv.Must(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: "cx.alerts.v2", Key: []byte("u-42"), Value: example}).FirstErr(), "produce")

	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := deliver.Verify([]byte("topsecret"), r.Header.Get(deliver.HeaderTimestamp), r.Header.Get(deliver.HeaderSignature), body, time.Now(), deliver.DefaultTolerance); err != nil {
			t.Errorf("signature: %v", err)
		}
		mu.Lock()
		got = append(got, r.Header.Get(deliver.HeaderAlertID))
		mu.Unlock()
	}))
	defer srv.Close()
	t.Setenv("TEST_DELIVER_SECRET", "topsecret")
	cfgPath := filepath.Join(t.TempDir(), "c.yaml")
	testenv.Must(t, os.WriteFile(cfgPath, []byte(`deliver:
  commit_interval: 50ms
  destinations:
    - name: helpdesk
      url: `+srv.URL+`
      secret: env:TEST_DELIVER_SECRET
      min_priority: HIGH
`), 0o600), "config")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err, "free port")
	addr := ln.Addr().String()
	ln.Close()
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"deliver", "--config", cfgPath, "--brokers", strings.Join(k.Brokers, ","), "--http-addr", addr, "--from-beginning", "--log-level", "error"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	testenv.Eventually(t, 20*time.Second, "the alert at the webhook", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) > 0
	})
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	testenv.Eventually(t, 10*time.Second, "the delivery in the metrics", func() bool {
		_, body := get("/metrics")
		return strings.Contains(body, `cx_deliver_delivered_total{destination="helpdesk"} 1`)
	})
	if code, body := get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d %s", code, body)
	}
	if _, body := get("/metrics"); strings.Contains(body, "topsecret") || strings.Contains(body, srv.URL) {
		t.Errorf("metrics show the secret or the url")
	}
	cancel()
	testenv.Must(t, <-done, "deliver")
	if got[0] != "0f1e2d3c4b5a69788796a5b4c3d2e1f0" {
		t.Errorf("alert id header %q", got[0])
	}

	// Without destinations it refuses to start, naming the key.
	root = NewRoot(&out, &errOut)
	root.SetArgs([]string{"deliver", "--brokers", strings.Join(k.Brokers, ",")})
	if err := root.ExecuteContext(context.Background()); err == nil || !strings.Contains(err.Error(), "deliver.destinations") {
		t.Errorf("no destinations: %v", err)
	}
}
