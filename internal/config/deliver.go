package config

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/cxstream/cxstream/internal/secure"
	"github.com/cxstream/cxstream/schemas"
)

// Deliver configures `cxstream deliver`: a consumer group on the alert
// topic that delivers alerts to webhooks and Slack.
type Deliver struct {
	// Group is the Kafka consumer group of the delivery process (not the
	// processor's group).
	Group string `yaml:"group"`
	// Concurrency bounds the deliveries in flight, all destinations
	// together.
	Concurrency int `yaml:"concurrency"`
	// MaxPending bounds the alerts read but not yet delivered or
	// dead-lettered everywhere; reading waits beyond it.
	MaxPending int `yaml:"max_pending"`
	// InitialBackoff and MaxBackoff bound the exponential backoff (with
	// jitter) between attempts.
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
	// CommitInterval: how often finished offsets are committed.
	CommitInterval time.Duration `yaml:"commit_interval"`
	// ShutdownTimeout: on SIGTERM, deliveries in flight get this long;
	// the rest is delivered again after the restart.
	ShutdownTimeout time.Duration        `yaml:"shutdown_timeout"`
	Destinations    []DeliverDestination `yaml:"destinations"`
}

// DeliverDestination is one webhook or Slack incoming webhook.
type DeliverDestination struct {
	// Name appears in metrics, logs and the default dead-letter topic.
	Name string `yaml:"name"`
	// Kind is webhook (signed alert.v2 JSON) or slack (a short text).
	Kind string `yaml:"kind"`
	// URL to POST to. A Slack webhook URL is itself a secret, so it may
	// be given as env:NAME or file:/path like Secret; it is never logged.
	URL string `yaml:"url"`
	// Secret signs webhook bodies (HMAC-SHA256); env:NAME reads an
	// environment variable, file:/path a file. Required for webhooks.
	Secret string `yaml:"secret"`
	// Types: only these alert types (empty: all).
	Types []string `yaml:"types"`
	// MinPriority: only alerts of at least this priority (empty: all).
	MinPriority string `yaml:"min_priority"`
	// MaxAttempts before the alert goes to the dead-letter topic.
	MaxAttempts int `yaml:"max_attempts"`
	// Timeout of one attempt.
	Timeout time.Duration `yaml:"timeout"`
	// DeadLetterTopic receives what could not be delivered (default
	// cx.deliver.deadletter.<name>).
	DeadLetterTopic string `yaml:"dead_letter_topic"`
}

// DefaultDeliver is the deliver section with nothing set.
func DefaultDeliver() Deliver {
	return Deliver{
		Group:           "cxstream-deliver",
		Concurrency:     32,
		MaxPending:      5000,
		InitialBackoff:  500 * time.Millisecond,
		MaxBackoff:      time.Minute,
		CommitInterval:  time.Second,
		ShutdownTimeout: 15 * time.Second,
	}
}

// Destination defaults.
const (
	DefaultDeliverMaxAttempts = 12
	DefaultDeliverTimeout     = 10 * time.Second
)

var (
	destinationName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	alertType       = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)
)

// WithDefaults fills the fields left empty.
func (d DeliverDestination) WithDefaults() DeliverDestination {
	if d.Kind == "" {
		d.Kind = "webhook"
	}
	if d.MaxAttempts == 0 {
		d.MaxAttempts = DefaultDeliverMaxAttempts
	}
	if d.Timeout == 0 {
		d.Timeout = DefaultDeliverTimeout
	}
	if d.DeadLetterTopic == "" {
		d.DeadLetterTopic = "cx.deliver.deadletter." + d.Name
	}
	return d
}

// Validate names the first setting of the section that cannot work. It
// does not read secrets (they may be absent where the processor runs);
// Resolve does, when deliver starts.
func (d Deliver) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: deliver.%s: %s", key, fmt.Sprintf(format, args...))
	}
	switch {
	case d.Group == "":
		return bad("group", "a consumer group name is required")
	case d.Concurrency < 1:
		return bad("concurrency", "must be at least 1, got %d", d.Concurrency)
	case d.MaxPending < 1:
		return bad("max_pending", "must be at least 1, got %d", d.MaxPending)
	case d.InitialBackoff <= 0 || d.MaxBackoff < d.InitialBackoff:
		return bad("initial_backoff", "must be positive and at most max_backoff")
	case d.CommitInterval <= 0:
		return bad("commit_interval", "must be positive")
	case d.ShutdownTimeout <= 0:
		return bad("shutdown_timeout", "must be positive")
	}
	seen := map[string]bool{}
	for i, dest := range d.Destinations {
		dest = dest.WithDefaults()
		key := fmt.Sprintf("destinations[%d]", i)
		if !destinationName.MatchString(dest.Name) {
			return bad(key+".name", "must be 1-63 of a-z, 0-9, _ and -, got %q", dest.Name)
		}
		if seen[dest.Name] {
			return bad(key+".name", "%q is used twice", dest.Name)
		}
		seen[dest.Name] = true
		switch dest.Kind {
		case "webhook":
			if dest.Secret == "" {
				return bad(key+".secret", "a webhook needs a signing secret (env:NAME, file:/path or the value)")
			}
		case "slack":
		default:
			return bad(key+".kind", "must be webhook or slack, got %q", dest.Kind)
		}
		if dest.URL == "" {
			return bad(key+".url", "required")
		}
		if !isSecretRef(dest.URL) {
			if err := checkURL(dest.URL); err != nil {
				return bad(key+".url", "%v", err)
			}
		}
		for _, t := range dest.Types {
			if !alertType.MatchString(t) {
				return bad(key+".types", "%q is not an alert type", t)
			}
		}
		if dest.MinPriority != "" && schemas.Priority(strings.ToUpper(dest.MinPriority)).Rank() < 0 {
			return bad(key+".min_priority", "must be LOW, NORMAL, HIGH or URGENT, got %q", dest.MinPriority)
		}
		if dest.MaxAttempts < 1 || dest.MaxAttempts > 100 {
			return bad(key+".max_attempts", "must be 1 to 100, got %d", dest.MaxAttempts)
		}
		if dest.Timeout <= 0 {
			return bad(key+".timeout", "must be positive")
		}
	}
	return nil
}

func isSecretRef(v string) bool {
	return strings.HasPrefix(v, "env:") || strings.HasPrefix(v, "file:")
}

// checkURL never quotes the URL: a Slack webhook URL holds a token.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http or https URL with a host")
	}
	return nil
}

// ResolveSecret returns value, the environment variable named by env:NAME,
// or the trimmed content of file:/path.
func ResolveSecret(value string) (string, error) {
	if name, ok := strings.CutPrefix(value, "env:"); ok {
		v, ok := os.LookupEnv(name)
		if !ok || v == "" {
			return "", fmt.Errorf("environment variable %s is not set", name)
		}
		return v, nil
	}
	return secure.Secret(value)
}

// Resolve reads the destination's URL and secret references. Errors name
// the key, never the value.
func (d DeliverDestination) Resolve() (DeliverDestination, error) {
	d = d.WithDefaults()
	u, err := ResolveSecret(d.URL)
	if err != nil {
		return d, fmt.Errorf("config: deliver destination %s: url: %w", d.Name, err)
	}
	if err := checkURL(u); err != nil {
		return d, fmt.Errorf("config: deliver destination %s: url: %w", d.Name, err)
	}
	d.URL = u
	if d.Secret != "" {
		if d.Secret, err = ResolveSecret(d.Secret); err != nil {
			return d, fmt.Errorf("config: deliver destination %s: secret: %w", d.Name, err)
		}
	}
	return d, nil
}
