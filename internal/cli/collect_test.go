package cli

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/testenv"
)

// The collect command as deployed: a write key from a file, identity in
// Redis; forget erases the user's identity links.
func TestCollectCommandAndForgetErasesLinks(t *testing.T) {
	k := testenv.StartKafka(t, 2, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	r := testenv.StartRedis(t)
	keyFile := filepath.Join(t.TempDir(), "write-key")
	testenv.Must(t, os.WriteFile(keyFile, []byte("s3cret\n"), 0o600), "key file")
	cfg := config.Default()
	cfg.Kafka.Brokers = k.Brokers
	cfg.Redis.Addrs = []string{r.Addr}
	cfg.HTTP.Addr = ""
	cfg.Collect.Addr = "127.0.0.1:0"
	cfg.Collect.WriteKeys = []string{"file:" + keyFile}
	testenv.Must(t, cfg.Validate(), "config")

	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- runCollector(ctx, cfg, zap.NewNop(), func(a string) { addr <- a }) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			testenv.Must(t, err, "collector")
		case <-time.After(10 * time.Second):
			t.Fatal("collector did not stop")
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-done:
		t.Fatalf("collector: %v", err)
	}
	send := func(path, body string) int {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.SetBasicAuth("s3cret", "")
		resp, err := http.DefaultClient.Do(req)
		testenv.Must(t, err, "post")
		resp.Body.Close()
		return resp.StatusCode
	}
	ts := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if code := send("/v1/identify", `{"anonymousId":"anon-9","userId":"user-9","timestamp":"`+ts+`"}`); code != 200 {
		t.Fatalf("identify: %d", code)
	}
	if code := send("/v1/track", `{"anonymousId":"anon-9","event":"Product Viewed","messageId":"t-1","timestamp":"`+ts+`"}`); code != 200 {
		t.Fatalf("track: %d", code)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Brokers...), kgo.ConsumeTopics("cx.clickstream.v1"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	testenv.Must(t, err, "consumer")
	defer cl.Close()
	var keys []string
	testenv.Eventually(t, 10*time.Second, "2 records", func() bool {
		pctx, pcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer pcancel()
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) { keys = append(keys, string(r.Key)) })
		return len(keys) >= 2
	})
	if keys[0] != "user-9" || keys[1] != "user-9" {
		t.Fatalf("records keyed %v, want both by user-9", keys)
	}
	if n := len(r.Client.Keys(context.Background(), "cx:idlink*").Val()); n != 2 {
		t.Fatalf("link keys: %d", n)
	}

	var out bytes.Buffer
	root := NewRoot(&out, &out)
	root.SetArgs([]string{"forget", "user-9", "--no-tombstone", "--redis", r.Addr})
	testenv.Must(t, root.Execute(), "forget")
	if !strings.Contains(out.String(), "and 2 identity link keys") {
		t.Errorf("forget said %q", out.String())
	}
	if left := r.Client.Keys(context.Background(), "cx:idlink*").Val(); len(left) != 0 {
		t.Errorf("left after forget: %v", left)
	}
}

func TestCollectRefusesToStartWithoutAWriteKey(t *testing.T) {
	cfg := config.Default()
	err := runCollector(context.Background(), cfg, zap.NewNop(), nil)
	if err == nil || !strings.Contains(err.Error(), "collect.write_keys") {
		t.Fatalf("got %v", err)
	}
}
