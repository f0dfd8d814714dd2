package api_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/api"
	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

// Tokens of the test server, by holder.
var tokens = map[string]struct{ token, role string }{
	"ana":     {"tok-ana-0123456789", "agent"},
	"bob":     {"tok-bob-0123456789", "agent"},
	"crashy":  {"tok-crashy-0123456789", "agent"},
	"analyst": {"tok-analyst-0123456789", "analyst"},
	"admin":   {"tok-admin-0123456789", "admin"},
}

// clock is the queue's wall clock in the tests, moved by hand.
type clock struct{ ms atomic.Int64 }

func (c *clock) Now() time.Time          { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Advance(d time.Duration) { c.ms.Add(d.Milliseconds()) }

// env is a running api over a real redis-server and a kfake cluster.
type env struct {
	t     *testing.T
	URL   string
	Redis *testenv.Redis
	Kafka *testenv.Kafka
	Queue *alertsink.Queue
	Clock *clock
	Logs  *observer.ObservedLogs
	cfg   config.Config
}

func start(t *testing.T, tweaks ...func(*config.Config)) *env {
	t.Helper()
	r := testenv.StartRedis(t)
	k := testenv.StartKafka(t, 2, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1")
	cfg := config.Default()
	cfg.Redis.Addrs = []string{r.Addr}
	cfg.Kafka.Brokers = k.Brokers
	cfg.Queue.SLAInterval = 100 * time.Millisecond
	cfg.Queue.SLA = map[schemas.Priority]time.Duration{schemas.PriorityUrgent: 5 * time.Minute, schemas.PriorityHigh: 15 * time.Minute, schemas.PriorityNormal: time.Hour, schemas.PriorityLow: 4 * time.Hour}
	cfg.API.MaxBodyBytes = 2048
	cfg.API.RequestTimeout = time.Second // streams must outlive it
	for name, tk := range tokens {
		sum := sha256.Sum256([]byte(tk.token))
		cfg.API.Tokens = append(cfg.API.Tokens, config.APIToken{Name: name, Role: tk.role, SHA256: hex.EncodeToString(sum[:])})
	}
	for _, tw := range tweaks {
		tw(&cfg)
	}
	testenv.Must(t, cfg.Validate(), "config")
	core, logs := observer.New(zapcore.DebugLevel)
	c := &clock{}
	c.ms.Store(time.Now().UnixMilli())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	testenv.Must(t, err, "listen")
	app, err := api.Assemble(cfg, zap.New(core), api.AppOptions{Listener: ln, Now: c.Now})
	testenv.Must(t, err, "assemble")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("api run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("api did not stop within 30s")
		}
	})
	e := &env{t: t, URL: "http://" + app.Addr(), Redis: r, Kafka: k, Clock: c, Logs: logs, cfg: cfg,
		Queue: alertsink.New(r.Client, alertsink.Options{SLA: alertsink.SLA(cfg.Queue.SLA), Now: c.Now})}
	testenv.Eventually(t, 10*time.Second, "api answering", func() bool {
		res, err := http.Get(e.URL + "/healthz")
		if err == nil {
			res.Body.Close()
		}
		return err == nil && res.StatusCode == 200
	})
	return e
}

// do sends a request as holder ("" = no token) and decodes a JSON answer
// into out (when not nil); it returns the status and the error code.
func (e *env) do(holder, method, path string, body any, out any) (int, string) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		raw, _ := json.Marshal(b)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, e.URL+path, rd)
	testenv.Must(e.t, err, "request")
	if holder != "" {
		req.Header.Set("Authorization", "Bearer "+tokens[holder].token)
	}
	res, err := http.DefaultClient.Do(req)
	testenv.Must(e.t, err, method+" "+path)
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 400 {
		var apiErr struct{ Error, Code string }
		if json.Unmarshal(raw, &apiErr) != nil || apiErr.Error == "" || apiErr.Code == "" {
			e.t.Errorf("%s %s: %d without a reason: %q", method, path, res.StatusCode, raw)
		}
		return res.StatusCode, apiErr.Code
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %v in %q", method, path, err, raw)
		}
	}
	return res.StatusCode, ""
}

// push queues negative-chat alerts.
func (e *env) push(alerts ...*schemas.Alert) {
	e.t.Helper()
	testenv.Must(e.t, e.Queue.Push(context.Background(), alerts), "push")
}

func negative(user, conv string, p schemas.Priority, at int64) *schemas.Alert {
	return &schemas.Alert{Schema: schemas.AlertV2, Type: schemas.AlertNegativeChat, UserID: user, ConversationID: conv, Priority: p, EventTime: at, DetectedAt: at,
		AlertID: schemas.AlertID(schemas.AlertNegativeChat, user, conv), Sentiment: new(-0.8), Reasons: []schemas.AlertReason{{Code: schemas.CodeVeryNegativeMessage, Params: map[string]any{"sentiment": -0.8, "threshold": -0.8}, Text: "very negative message (-0.80)"}}, Excerpt: "charged twice, card [card]", RuleVersion: "negative_chat/1"}
}

// produceAlert writes an alert to the alert topic as the processor would.
func (e *env) produceAlert(a *schemas.Alert) {
	e.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Kafka.Brokers...))
	testenv.Must(e.t, err, "client")
	defer cl.Close()
	raw, _ := json.Marshal(a)
	testenv.Must(e.t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: "cx.alerts.v2", Key: []byte(a.UserID), Value: raw}).FirstErr(), "produce")
}

// stream opens the alert stream as holder and returns a channel of the
// alerts it carries; it closes with the test.
func (e *env) stream(holder, query string) <-chan schemas.Alert {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.URL+"/v1/alerts/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+tokens[holder].token)
	res, err := http.DefaultClient.Do(req)
	testenv.Must(e.t, err, "stream")
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		e.t.Fatalf("stream: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	out := make(chan schemas.Alert, 16)
	connected := make(chan struct{})
	go func() {
		defer res.Body.Close()
		defer close(out)
		sc := bufio.NewScanner(res.Body)
		first := true
		for sc.Scan() {
			line := sc.Text()
			if first {
				close(connected)
				first = false
			}
			if data, ok := strings.CutPrefix(line, "data: "); ok {
				var a schemas.Alert
				if json.Unmarshal([]byte(data), &a) == nil {
					out <- a
				}
			}
		}
	}()
	select {
	case <-connected:
	case <-time.After(10 * time.Second):
		e.t.Fatal("the stream sent nothing")
	}
	return out
}

// next waits for an alert on the stream.
func next(t *testing.T, ch <-chan schemas.Alert, timeout time.Duration) (schemas.Alert, bool) {
	t.Helper()
	select {
	case a, ok := <-ch:
		return a, ok
	case <-time.After(timeout):
		return schemas.Alert{}, false
	}
}

func noFunnels(context.Context) ([]report.FunnelStats, error) { return nil, nil }

func defaultAPIConfig() config.API { return config.DefaultAPI() }

func zapString(k, v string) zapcore.Field { return zap.String(k, v) }
