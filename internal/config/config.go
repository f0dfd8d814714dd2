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
	"regexp"
	"slices"
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
	Breakdown  funnel.Limits       `yaml:"funnel_breakdowns"`
	Events     Events              `yaml:"events"`
	Collect    Collect             `yaml:"collect"`
	Sentiment  sentiment.Config    `yaml:"sentiment"`
	Churn      churn.Config        `yaml:"churn"`
	Segments   Segments            `yaml:"segments"`
	Privacy    Privacy             `yaml:"privacy"`
	HTTP       HTTP                `yaml:"http"`
	Log        Log                 `yaml:"log"`
	Queue      Queue               `yaml:"queue"`
	API        API                 `yaml:"api"`
	Deliver    Deliver             `yaml:"deliver"`
}

// Kafka is the Kafka client configuration.
type Kafka struct {
	Brokers []string `yaml:"brokers"`
	Group   string   `yaml:"group"`
	// InstanceID turns on static group membership: a restarted instance
	// with the same id takes its partitions back at once instead of after
	// the session timeout. Give each instance its own stable id (a
	// StatefulSet pod name); CXSTREAM_KAFKA_INSTANCE_ID sets it.
	InstanceID       string        `yaml:"instance_id"`
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
	// CombineBelow: batches of fewer records than this that several
	// partitions' workers hand over at the same moment are made as one
	// (one state load, one produce, one state write for all of them);
	// 0: every batch on its own.
	CombineBelow    int           `yaml:"combine_below"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// TimerInterval: how often each partition checks whether it is idle
	// (see IdleAdvance).
	TimerInterval time.Duration `yaml:"timer_interval"`
	// IdleAdvance: a clickstream partition with no lag and no record for
	// this long moves its watermark to the wall clock less the allowed
	// lateness, so a silent user's window or inactivity check still fires
	// in live operation; 0 moves watermarks by event time only.
	IdleAdvance time.Duration `yaml:"idle_advance"`
	// AlignWait: partition N of the clickstream and of the chat topic are
	// read together, merged by event time. A topic with nothing to read
	// holds the other's later records back this long before they go on
	// without it (0: not at all), so records the producers wrote to the
	// two topics a moment apart still meet in event-time order; one with
	// lag holds them until it delivers, at most MaxAlignWait.
	AlignWait    time.Duration `yaml:"align_wait"`
	MaxAlignWait time.Duration `yaml:"max_align_wait"`
	// CommitInterval: how often offsets of durable batches are committed.
	CommitInterval time.Duration    `yaml:"commit_interval"`
	StateCache     `yaml:",inline"` // state_cache_bytes, state_encoding (state.go)
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
			CombineBelow:       500,
			ShutdownTimeout:    20 * time.Second,
			TimerInterval:      time.Second,
			IdleAdvance:        30 * time.Second,
			AlignWait:          200 * time.Millisecond,
			MaxAlignWait:       30 * time.Second,
			CommitInterval:     200 * time.Millisecond,
			StateCache:         DefaultStateCache(),
		},
		Funnels:   funnel.DefaultDefinitions(),
		Breakdown: DefaultFunnelBreakdowns(),
		Events:    DefaultEvents(),
		Collect:   DefaultCollect(),
		Sentiment: sentiment.DefaultConfig(),
		Churn:     churn.DefaultConfig(),
		Segments:  DefaultSegments(),
		Privacy:   Privacy{DedupWindow: 64},
		HTTP:      HTTP{Addr: ":9108"},
		Log:       Log{Level: "info", Format: "json"},
		Queue:     DefaultQueue(),
		API:       DefaultAPI(),
		Deliver:   DefaultDeliver(),
	}
}

// Load reads path (empty: defaults only) and the environment, and
// validates the result. Errors are typed: *FileError, *EnvError (joined,
// one per bad variable) or *ValidationError.
func Load(path string) (Config, error) {
	cfg, err := Read(path, os.Environ())
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.Validate()
}

// Read applies the file at path (empty: none) and then the CXSTREAM_*
// variables of environ over the defaults, without validating: flags may
// still change the result. A file that cannot be read or parsed is a
// *FileError; every variable that cannot be applied is reported (joined
// *EnvErrors), and then the configuration must not be used at all.
func Read(path string, environ []string) (Config, error) {
	cfg := Default()
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return cfg, &FileError{Path: path, Err: err}
		}
		if err := cfg.merge(raw); err != nil {
			return cfg, &FileError{Path: path, Err: err}
		}
	}
	if err := cfg.applyEnv(environ); err != nil {
		return cfg, err
	}
	return cfg, nil
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

// EnvPrefix starts every variable cxstream reads; an unknown variable
// with it is an error, since a misspelt one would be silently ignored.
const EnvPrefix = "CXSTREAM_"

// EnvVar is an environment variable that overrides one key of the file.
type EnvVar struct {
	Name, Key string
	// Secret values are never repeated in error messages.
	Secret bool
	set    func(c *Config, v string) error
}

// Env lists the environment variables that override the file.
var Env = []EnvVar{
	{Name: "CXSTREAM_KAFKA_BROKERS", Key: "kafka.brokers", set: func(c *Config, v string) error { return setList(&c.Kafka.Brokers, v) }},
	{Name: "CXSTREAM_KAFKA_GROUP", Key: "kafka.group", set: func(c *Config, v string) error { c.Kafka.Group = v; return nil }},
	{Name: "CXSTREAM_KAFKA_INSTANCE_ID", Key: "kafka.instance_id", set: func(c *Config, v string) error { c.Kafka.InstanceID = v; return nil }},
	{Name: "CXSTREAM_KAFKA_SASL_MECHANISM", Key: "kafka.sasl.mechanism", set: func(c *Config, v string) error { c.Kafka.SASL.Mechanism = v; return nil }},
	{Name: "CXSTREAM_KAFKA_SASL_USERNAME", Key: "kafka.sasl.username", set: func(c *Config, v string) error { c.Kafka.SASL.Username = v; return nil }},
	{Name: "CXSTREAM_KAFKA_SASL_PASSWORD", Key: "kafka.sasl.password", Secret: true, set: func(c *Config, v string) error { c.Kafka.SASL.Password = v; return nil }},
	{Name: "CXSTREAM_REDIS_ADDRS", Key: "redis.addrs", set: func(c *Config, v string) error { return setList(&c.Redis.Addrs, v) }},
	{Name: "CXSTREAM_REDIS_USERNAME", Key: "redis.username", set: func(c *Config, v string) error { c.Redis.Username = v; return nil }},
	{Name: "CXSTREAM_REDIS_PASSWORD", Key: "redis.password", Secret: true, set: func(c *Config, v string) error { c.Redis.Password = v; return nil }},
	{Name: "CXSTREAM_REDIS_CLUSTER", Key: "redis.cluster", set: func(c *Config, v string) error { return setBool(&c.Redis.Cluster, v) }},
	{Name: "CXSTREAM_PSEUDONYM_KEY", Key: "privacy.pseudonym_key", Secret: true, set: func(c *Config, v string) error { c.Privacy.PseudonymKey = v; return nil }},
	{Name: "CXSTREAM_HTTP_ADDR", Key: "http.addr", set: func(c *Config, v string) error { c.HTTP.Addr = v; return nil }},
	{Name: "CXSTREAM_LOG_LEVEL", Key: "log.level", set: func(c *Config, v string) error { return setOneOf(&c.Log.Level, v, "debug", "info", "warn", "error") }},
	{Name: "CXSTREAM_LOG_FORMAT", Key: "log.format", set: func(c *Config, v string) error { return setOneOf(&c.Log.Format, v, "json", "console") }},
	{Name: "CXSTREAM_SHUTDOWN_TIMEOUT", Key: "processing.shutdown_timeout", set: func(c *Config, v string) error { return setDuration(&c.Processing.ShutdownTimeout, v) }},
}

// applyEnv applies every CXSTREAM_* variable of environ ("NAME=value")
// and reports every one that cannot be applied, not only the first.
func (c *Config) applyEnv(environ []string) error {
	byName := make(map[string]EnvVar, len(Env))
	names := make([]string, len(Env))
	for i, e := range Env {
		byName[e.Name] = e
		names[i] = e.Name
	}
	var errs []error
	for _, kv := range environ {
		name, v, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		e, ok := byName[name]
		if !ok {
			if kubernetesServiceLink(name) {
				continue // injected by Kubernetes for a Service named cxstream-*, not meant for us
			}
			errs = append(errs, &EnvError{Name: name, Err: fmt.Errorf("unknown variable%s", suggest(name, names))})
			continue
		}
		if v == "" {
			continue // set but empty: as if unset, like the shell's ${X:-default}
		}
		if err := e.set(c, v); err != nil {
			if !e.Secret {
				err = fmt.Errorf("%q %w", v, err)
			}
			errs = append(errs, &EnvError{Name: e.Name, Key: e.Key, Err: err})
		}
	}
	return errors.Join(errs...)
}

// serviceLinkRE matches the variables Kubernetes injects for every Service
// of the namespace (FOO_SERVICE_HOST, FOO_SERVICE_PORT_HTTP, FOO_PORT,
// FOO_PORT_9108_TCP_ADDR...): a Service named cxstream-metrics yields
// CXSTREAM_METRICS_SERVICE_HOST, which must not stop cxstream.
var serviceLinkRE = regexp.MustCompile(`_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_[0-9]+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$`)

func kubernetesServiceLink(name string) bool { return serviceLinkRE.MatchString(name) }

// Errors of environment values; the value itself is put before them.
var (
	errNotBool     = errors.New("is not a boolean; accepted: true, false, 1, 0")
	errNotDuration = errors.New("is not a duration; accepted: a number with a unit, e.g. 30s, 5m, 1h30m")
	errEmptyList   = errors.New("is an empty list; accepted: comma-separated host:port addresses")
)

func setBool(dst *bool, v string) error {
	switch strings.ToLower(v) {
	case "true", "1":
		*dst = true
	case "false", "0":
		*dst = false
	default:
		return errNotBool
	}
	return nil
}

func setDuration(dst *time.Duration, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil {
		return errNotDuration
	}
	*dst = d
	return nil
}

func setList(dst *[]string, v string) error {
	l := splitList(v)
	if len(l) == 0 {
		return errEmptyList
	}
	*dst = l
	return nil
}

func setOneOf(dst *string, v string, accepted ...string) error {
	if !slices.Contains(accepted, v) {
		return fmt.Errorf("is not accepted; accepted: %s", strings.Join(accepted, ", "))
	}
	*dst = v
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

// Validate reports every key that cannot work (a *ValidationError), so
// a user fixes them all in one go.
func (c Config) Validate() error {
	var ps problems
	if len(c.Kafka.Brokers) == 0 {
		ps.add("kafka.brokers", "at least one broker address is required")
	}
	if c.Kafka.Group == "" {
		ps.add("kafka.group", "a consumer group name is required")
	}
	if len(c.Redis.Addrs) == 0 {
		ps.add("redis.addrs", "at least one Redis address is required")
	}
	validateTopics(c.Topics, &ps)
	if c.Processing.MaxMessageBytes < 1024 {
		ps.add("processing.max_message_bytes", "must be at least 1024, got %d", c.Processing.MaxMessageBytes)
	}
	if c.Processing.MaxDeadLetterBytes < 1024 {
		ps.add("processing.max_dead_letter_bytes", "must be at least 1024, got %d", c.Processing.MaxDeadLetterBytes)
	}
	for key, d := range map[string]time.Duration{
		"processing.shutdown_timeout": c.Processing.ShutdownTimeout,
		"processing.timer_interval":   c.Processing.TimerInterval,
		"processing.commit_interval":  c.Processing.CommitInterval,
		"processing.max_clock_skew":   c.Processing.MaxClockSkew,
		"kafka.session_timeout":       c.Kafka.SessionTimeout,
		"kafka.rebalance_timeout":     c.Kafka.RebalanceTimeout,
	} {
		if d <= 0 {
			ps.add(key, "must be positive, got %s", d)
		}
	}
	if c.Processing.MaxPollRecords < 1 {
		ps.add("processing.max_poll_records", "must be at least 1, got %d", c.Processing.MaxPollRecords)
	}
	if c.Processing.QueuedBatches < 1 {
		ps.add("processing.queued_batches", "must be at least 1, got %d", c.Processing.QueuedBatches)
	}
	if c.Processing.CombineBelow < 0 {
		ps.add("processing.combine_below", "must not be negative (0 turns it off), got %d", c.Processing.CombineBelow)
	}
	if c.Redis.StateTTL < 0 {
		ps.add("redis.state_ttl", "must not be negative")
	}
	if c.Processing.AllowedLateness < 0 {
		ps.add("processing.allowed_lateness", "must not be negative")
	}
	if c.Processing.IdleAdvance < 0 {
		ps.add("processing.idle_advance", "must not be negative (0 turns it off)")
	}
	if c.Processing.AlignWait < 0 {
		ps.add("processing.align_wait", "must not be negative")
	}
	if c.Processing.MaxAlignWait <= 0 {
		ps.add("processing.max_align_wait", "must be positive")
	}
	if c.Privacy.DedupWindow < 0 {
		ps.add("privacy.dedup_window", "must not be negative")
	}
	for _, addr := range c.Kafka.Brokers {
		if !strings.Contains(addr, ":") {
			ps.add("kafka.brokers", "%q has no port (host:port)", addr)
		}
	}
	for _, addr := range c.Redis.Addrs {
		if !strings.Contains(addr, ":") {
			ps.add("redis.addrs", "%q has no port (host:port)", addr)
		}
	}
	ps.addErr("kafka.sasl", c.Kafka.SASL.Validate())
	c.validateFunnels(&ps)
	c.validateBreakdowns(&ps)
	ps.addErr("sentiment", c.Sentiment.Validate())
	ps.addErr("churn", c.Churn.Validate())
	c.validateSegments(&ps)
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		ps.add("log.level", "must be debug, info, warn or error, got %q", c.Log.Level)
	}
	if !slices.Contains([]string{"json", "console"}, c.Log.Format) {
		ps.add("log.format", "must be json or console, got %q", c.Log.Format)
	}
	c.validateInputs(&ps)
	ps.addKeyed(c.Processing.StateCache.Validate())
	ps.addKeyed(c.Queue.Validate())
	ps.addKeyed(c.API.Validate())
	ps.addKeyed(c.Deliver.Validate())
	return ps.err()
}
