package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

func TestAPICommandServesWithTokensFromTheConfigFile(t *testing.T) {
	r := testenv.StartRedis(t)
	k := testenv.StartKafka(t, 1, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	testenv.Must(t, alertsink.NewQueue(r.Client, "cx").Push(context.Background(), []*schemas.Alert{
		{Type: schemas.AlertNegativeChat, UserID: "u-1", ConversationID: "conv-1", Priority: schemas.PriorityHigh, EventTime: 1, Reasons: []schemas.AlertReason{{Code: schemas.CodeStrongNegativeMessage, Text: "negative"}}},
	}), "queue")
	sum := sha256.Sum256([]byte("secret-agent-token"))
	cfgPath := filepath.Join(t.TempDir(), "cxstream.yaml")
	testenv.Must(t, os.WriteFile(cfgPath, []byte(fmt.Sprintf("api:\n  tokens:\n    - {name: ana, role: agent, sha256: %s}\n", hex.EncodeToString(sum[:]))), 0o600), "config")
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))

	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"api", "--config", cfgPath, "--addr", addr, "--redis", r.Addr, "--brokers", strings.Join(k.Brokers, ","), "--log-level", "warn"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/queue", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body)
	}
	testenv.Eventually(t, 15*time.Second, "api listening", func() bool { s, _ := get(""); return s == 401 })
	if status, body := get("secret-agent-token"); status != 200 || !strings.Contains(body, `"conversation_id":"conv-1"`) {
		t.Fatalf("queue through the api: %d %s", status, body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("api: %v (%s)", err, errOut.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("api did not stop")
	}
	if strings.Contains(out.String()+errOut.String(), "secret-agent-token") {
		t.Fatal("the token was printed")
	}
}
