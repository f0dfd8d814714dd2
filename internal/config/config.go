// Package config loads cxstream's configuration: defaults, then a YAML
// file, then CXSTREAM_* environment variables, then command-line flags
// (applied by the caller), then validation that names the offending key.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/secure"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/processors/sentiment"
	"github.com/cxstream/cxstream/schemas"
)

// Config is the whole configuration.
type Config struct {
	Kafka      Kafka               `yaml:"kafka"`
	Redis      Redis               `yaml:"redis"`
	Topics     pipeline.Topics     `yaml:"topics"`
	Processing Processing          `yaml:"processing"`
	Funnels    []funnel.Definition `yaml:"funnels"`
	Events     Events              `yaml:"events"`
	Collect    Collect             `yaml:"collect"`
	Sentiment  sentiment.Config    `yaml:"sentiment"`
	Churn      churn.Config        `yaml:"churn"`
	Privacy    Privacy             `yaml:"privacy"`
	HTTP       HTTP                `yaml:"http"`
	Log        Log                 `yaml:"log"`
}

// Kafka is the Kafka client configuration.
type Kafka struct {
	Brokers          []string      `yaml:"brokers"`
	Group            string        `yaml:"group"`
	ClientID         string        `yaml:"client_id"`
	SessionTimeout   time.Duration `yaml:"session_timeout"`
	RebalanceTimeout time.Duration `yaml:"rebalance_timeout"`
	TLS              secure.TLS    `yaml:"tls"`
	SASL             secure.SASL   `yaml:"sasl"`
}

// Redis is the state store configuration. Several addresses, or Cluster,
// select a Redis Cluster client.
type Redis struct {
	Addrs     []string      `yaml:"addrs"`
	Cluster   bool          `yaml:"cluster"`
	Username  string        `yaml:"username"`
	Password  string        `yaml:"password"`
	DB        int           `yaml:"db"`
	KeyPrefix string        `yaml:"key_prefix"`
	StateTTL  time.Duration `yaml:"state_ttl"`
	TLS       secure.TLS    `yaml:"tls"`
}

// Processing tunes the pipeline and the consumer.
type Processing struct {
	MaxMessageBytes int `yaml:"max_message_bytes"`
	// MaxDeadLetterBytes: a dead letter's value is cut to this size (with
	// headers saying so) so the broker's record limit cannot wedge the
	// processor. Keep it under the dead-letter topic's max.message.bytes.
	MaxDeadLetterBytes int           `yaml:"max_dead_letter_bytes"`
	MaxClockSkew       time.Duration `yaml:"max_clock_skew"`
	// AllowedLateness: how late (behind the user's latest click) an event
	// may arrive and still be put in its place in the funnels.
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	MaxPollRecords  int           `yaml:"max_poll_records"`
	QueuedBatches   int           `yaml:"queued_batches"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TimerInterval: how often each partition looks for due timers.
	TimerInterval time.Duration `yaml:"timer_interval"`
	// CommitInterval: how often offsets of durable batches are committed.
	CommitInterval time.Duration `yaml:"commit_interval"`
}

// Privacy configures pseudonymisation.
type Privacy struct {
	// PseudonymKey turns pseudonymisation on: user ids are replaced by an
	// HMAC-SHA256 of this key before they become Redis keys or leave in
	// alerts. "file:/path" reads it from a file. Better set through
	// CXSTREAM_PSEUDONYM_KEY.
	PseudonymKey string `yaml:"pseudonym_key"`
	// AlertOriginalID also puts the original id in alerts.
	AlertOriginalID bool `yaml:"alert_original_id"`
	// DedupWindow: recent event ids remembered per user and stream.
	DedupWindow int `yaml:"dedup_window"`
}

// HTTP is the metrics and probes listener.
type HTTP struct {
	// Addr, e.g. ":9108"; empty disables the listener.
	Addr string `yaml:"addr"`
}

// Log configures zap.
type Log struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or console
}

// Default is the configuration with nothing set.
func Default() Config {
	return Config{
		Kafka:  Kafka{Brokers: []string{"localhost:9092"}, Group: "cxstream", ClientID: "cxstream", SessionTimeout: 45 * time.Second, RebalanceTimeout: 60 * time.Second},
		Redis:  Redis{Addrs: []string{"localhost:6379"}, KeyPrefix: "cx", StateTTL: 90 * 24 * time.Hour},
		Topics: pipeline.DefaultTopics(),
		Processing: Processing{
			MaxMessageBytes:    schemas.DefaultMaxMessageBytes,
			MaxDeadLetterBytes: 900 << 10,
			MaxClockSkew:       time.Hour,
			AllowedLateness:    5 * time.Minute,
			MaxPollRecords:     2000,
			QueuedBatches:      2,
			ShutdownTimeout:    20 * time.Second,
			TimerInterval:      time.Second,
			CommitInterval:     200 * time.Millisecond,
		},
		Funnels:   funnel.DefaultDefinitions(),
		Events:    DefaultEvents(),
		Collect:   DefaultCollect(),
		Sentiment: sentiment.DefaultConfig(),
		Churn:     churn.DefaultConfig(),
		Privacy:   Privacy{DedupWindow: 64},
		HTTP:      HTTP{Addr: ":9108"},
		Log:       Log{Level: "info", Format: "json"},
	}
}

// Load reads path (empty: defaults only) and the environment, and
// validates the result.
func Load(path string) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := cfg.merge(raw); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := cfg.applyEnv(os.LookupEnv); err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

func (c *Config) merge(raw []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	// A file that sets funnels replaces the default funnels.
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return cleanYAMLError(err)
	}
	return nil
}

func cleanYAMLError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	return errors.New(msg)
}

// Env lists the environment variables that override the file.
var Env = []struct {
	Name, Key string
	set       func(c *Config, v string) error
}{
	{"CXSTREAM_KAFKA_BROKERS", "kafka.brokers", func(c *Config, v string) error { c.Kafka.Brokers = splitList(v); return nil }},
	{"CXSTREAM_KAFKA_GROUP", "kafka.group", func(c *Config, v string) error { c.Kafka.Group = v; return nil }},
	{"CXSTREAM_KAFKA_SASL_MECHANISM", "kafka.sasl.mechanism", func(c *Config, v string) error { c.Kafka.SASL.Mechanism = v; return nil }},
	{"CXSTREAM_KAFKA_SASL_USERNAME", "kafka.sasl.username", func(c *Config, v string) error { c.Kafka.SASL.Username = v; return nil }},
	{"CXSTREAM_KAFKA_SASL_PASSWORD", "kafka.sasl.password", func(c *Config, v string) error { c.Kafka.SASL.Password = v; return nil }},
	{"CXSTREAM_REDIS_ADDRS", "redis.addrs", func(c *Config, v string) error { c.Redis.Addrs = splitList(v); return nil }},
	{"CXSTREAM_REDIS_USERNAME", "redis.username", func(c *Config, v string) error { c.Redis.Username = v; return nil }},
	{"CXSTREAM_REDIS_PASSWORD", "redis.password", func(c *Config, v string) error { c.Redis.Password = v; return nil }},
	{"CXSTREAM_REDIS_CLUSTER", "redis.cluster", func(c *Config, v string) (err error) { c.Redis.Cluster, err = strconv.ParseBool(v); return }},
	{"CXSTREAM_PSEUDONYM_KEY", "privacy.pseudonym_key", func(c *Config, v string) error { c.Privacy.PseudonymKey = v; return nil }},
	{"CXSTREAM_HTTP_ADDR", "http.addr", func(c *Config, v string) error { c.HTTP.Addr = v; return nil }},
	{"CXSTREAM_LOG_LEVEL", "log.level", func(c *Config, v string) error { c.Log.Level = v; return nil }},
	{"CXSTREAM_LOG_FORMAT", "log.format", func(c *Config, v string) error { c.Log.Format = v; return nil }},
	{"CXSTREAM_SHUTDOWN_TIMEOUT", "processing.shutdown_timeout", func(c *Config, v string) (err error) {
		c.Processing.ShutdownTimeout, err = time.ParseDuration(v)
		return
	}},
}

func (c *Config) applyEnv(lookup func(string) (string, bool)) error {
	for _, e := range Env {
		if v, ok := lookup(e.Name); ok && v != "" {
			if err := e.set(c, v); err != nil {
				return fmt.Errorf("config: %s (%s): %w", e.Name, e.Key, err)
			}
		}
	}
	return nil
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// Validate names the first key that cannot work.
func (c Config) Validate() error {
	bad := func(key, format string, args ...any) error {
		return fmt.Errorf("config: %s: %s", key, fmt.Sprintf(format, args...))
	}
	switch {
	case len(c.Kafka.Brokers) == 0:
		return bad("kafka.brokers", "at least one broker address is required")
	case c.Kafka.Group == "":
		return bad("kafka.group", "a consumer group name is required")
	case len(c.Redis.Addrs) == 0:
		return bad("redis.addrs", "at least one Redis address is required")
	case c.Topics.Clickstream == "" || c.Topics.Chat == "" || c.Topics.Alerts == "" || c.Topics.DeadLetter == "":
		return bad("topics", "clickstream, chat, alerts and deadletter are required")
	case c.Topics.Clickstream == c.Topics.Chat:
		return bad("topics", "clickstream and chat must be different topics")
	case c.Processing.MaxMessageBytes < 1024:
		return bad("processing.max_message_bytes", "must be at least 1024, got %d", c.Processing.MaxMessageBytes)
	case c.Processing.MaxDeadLetterBytes < 1024:
		return bad("processing.max_dead_letter_bytes", "must be at least 1024, got %d", c.Processing.MaxDeadLetterBytes)
	case c.Processing.ShutdownTimeout <= 0:
		return bad("processing.shutdown_timeout", "must be positive")
	case c.Redis.StateTTL < 0:
		return bad("redis.state_ttl", "must not be negative")
	}
	for _, addr := range append(append([]string{}, c.Kafka.Brokers...), c.Redis.Addrs...) {
		if !strings.Contains(addr, ":") {
			return bad("address", "%q has no port (host:port)", addr)
		}
	}
	if c.Processing.AllowedLateness < 0 {
		return bad("processing.allowed_lateness", "must not be negative")
	}
	if err := c.Kafka.SASL.Validate(); err != nil {
		return bad("kafka.sasl", "%v", err)
	}
	if _, err := funnel.New(c.Funnels, c.Processing.AllowedLateness); err != nil {
		return bad("funnels", "%v", err)
	}
	if err := c.validateInputs(); err != nil {
		return err
	}
	if err := c.Sentiment.Validate(); err != nil {
		return bad("sentiment", "%v", err)
	}
	if err := c.Churn.Validate(); err != nil {
		return bad("churn", "%v", err)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		return bad("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "console":
	default:
		return bad("log.format", "must be json or console, got %q", c.Log.Format)
	}
	return nil
}
