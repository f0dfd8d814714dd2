package deliver

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSignatureVerifies(t *testing.T) {
	secret := []byte("whsec-1")
	body := []byte(`{"alert_id":"a","type":"negative_chat"}`)
	now := time.Unix(1_763_900_000, 0)
	ts := strconv.FormatInt(now.Unix(), 10)
	sig := Sign(secret, now.Unix(), body)
	if !strings.HasPrefix(sig, "v1=") || len(sig) != 3+64 {
		t.Fatalf("signature %q", sig)
	}
	if err := Verify(secret, ts, sig, body, now.Add(time.Minute), DefaultTolerance); err != nil {
		t.Fatalf("a good signature: %v", err)
	}
	cases := []struct {
		name          string
		secret        string
		ts, sig, body string
		at            time.Time
		want          error
	}{
		{"tampered body", "whsec-1", ts, sig, `{"alert_id":"b","type":"negative_chat"}`, now, ErrBadSignature},
		{"other secret", "whsec-2", ts, sig, string(body), now, ErrBadSignature},
		{"timestamp moved", "whsec-1", strconv.FormatInt(now.Unix()+1, 10), sig, string(body), now, ErrBadSignature},
		{"replayed later", "whsec-1", ts, sig, string(body), now.Add(6 * time.Minute), ErrStale},
		{"from the future", "whsec-1", ts, sig, string(body), now.Add(-6 * time.Minute), ErrStale},
		{"no signature", "whsec-1", ts, "", string(body), now, ErrNoSignature},
		{"bad timestamp", "whsec-1", "soon", sig, string(body), now, ErrNoSignature},
	}
	for _, c := range cases {
		if err := Verify([]byte(c.secret), c.ts, c.sig, []byte(c.body), c.at, DefaultTolerance); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	// While rotating, a receiver accepts either of two signatures.
	if err := Verify(secret, ts, Sign([]byte("old"), now.Unix(), body)+", "+sig, body, now, DefaultTolerance); err != nil {
		t.Errorf("rotation: %v", err)
	}
}

// A Slack webhook URL is a credential: errors carry no URL.
func TestErrorsNeverCarryTheURL(t *testing.T) {
	err := &url.Error{Op: "Post", URL: "https://hooks.slack.com/services/T0/B0/SECRETTOKEN", Err: errors.New("dial tcp 10.0.0.1:443: connect: connection refused")}
	if got := errorWithoutURL(err); strings.Contains(got, "SECRETTOKEN") || !strings.Contains(got, "connection refused") {
		t.Fatalf("detail %q", got)
	}
}
