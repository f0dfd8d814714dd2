package config

import (
	"encoding/hex"
	"fmt"
	"regexp"
	"time"
)

// API configures `cxstream api`, the HTTP API and web console for agents
// and analysts, and how user views are shown.
type API struct {
	// Addr is the listen address, e.g. ":8080".
	Addr string `yaml:"addr"`
	// Tokens are the bearer tokens, each with a role, given as the hex
	// SHA-256 of the token (printf %s "$TOKEN" | sha256sum): the file
	// never holds a usable secret.
	Tokens []APIToken `yaml:"tokens"`
	// MaxBodyBytes bounds a request body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// RequestTimeout bounds every request but the alert stream.
	RequestTimeout time.Duration `yaml:"request_timeout"`
	// Currency names the currency of spend figures in user views (the
	// state sums purchase amounts as they come, without converting).
	Currency string `yaml:"currency"`
}

// APIToken is one bearer token.
type APIToken struct {
	// Name identifies the holder in the audit log (never the token).
	Name string `yaml:"name"`
	// Role: agent (queue and user views), analyst (funnels and alerts)
	// or admin (everything, erasure included).
	Role string `yaml:"role"`
	// SHA256 is the hex SHA-256 of the token.
	SHA256 string `yaml:"sha256"`
}

// DefaultAPI is the API configuration with nothing set.
func DefaultAPI() API {
	return API{Addr: ":8080", MaxBodyBytes: 64 << 10, RequestTimeout: 10 * time.Second, Currency: "USD"}
}

var (
	tokenNameRE = regexp.MustCompile(`^[A-Za-z0-9._@+-]{1,64}$`)
	currencyRE  = regexp.MustCompile(`^[A-Z]{3}$`)
)

// Validate names the first api key that cannot work.
func (a API) Validate() error {
	if a.MaxBodyBytes < 1024 {
		return fmt.Errorf("config: api.max_body_bytes: must be at least 1024, got %d", a.MaxBodyBytes)
	}
	if a.RequestTimeout < 100*time.Millisecond {
		return fmt.Errorf("config: api.request_timeout: must be at least 100ms, got %s", a.RequestTimeout)
	}
	if !currencyRE.MatchString(a.Currency) {
		return fmt.Errorf("config: api.currency: must be an ISO 4217 code such as USD, got %q", a.Currency)
	}
	seen := map[string]bool{}
	for i, t := range a.Tokens {
		if !tokenNameRE.MatchString(t.Name) {
			return fmt.Errorf("config: api.tokens[%d].name: must be 1-64 letters, digits or ._@+-", i)
		}
		switch t.Role {
		case "agent", "analyst", "admin":
		default:
			return fmt.Errorf("config: api.tokens[%d].role: must be agent, analyst or admin, got %q", i, t.Role)
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != 32 {
			return fmt.Errorf("config: api.tokens[%d].sha256: must be 64 hex digits (the SHA-256 of the token, not the token)", i)
		}
		if seen[t.SHA256] {
			return fmt.Errorf("config: api.tokens[%d].sha256: the same token is listed twice", i)
		}
		seen[t.SHA256] = true
	}
	return nil
}
