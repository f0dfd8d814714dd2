package segment

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Config defines the segments: ordered rules over the user's features,
// the first rule whose conditions all hold names the user's segment.
type Config struct {
	// Enabled turns the processor on (default true).
	Enabled bool `yaml:"enabled"`
	// Rules, in order; several rules may name the same segment (any of
	// them puts the user there).
	Rules []Rule `yaml:"rules"`
	// Fallback is the segment of a user no rule matches.
	Fallback string `yaml:"fallback"`
	// RecentWindow is how far back (event time) recent_abandonments and
	// recent_negative_chats count.
	RecentWindow time.Duration `yaml:"recent_window"`
	// History is how many of a user's latest changes are kept in the state
	// (for `cxstream segments`, which draws the last 48 hours from them).
	History int `yaml:"history"`
}

// Rule puts a user in Segment when every condition of When holds.
type Rule struct {
	Segment string `yaml:"segment"`
	// When are conditions "<feature> <op> <value>", e.g. "purchases >= 3",
	// "lifecycle = dormant", "properties.plan = pro"; op is one of >=, >,
	// <=, <, = and !=.
	When []string `yaml:"when"`
}

// The default segments: the four groups the business acts on.
const (
	HighValue   = "high_value"
	Potential   = "potential"
	Churned     = "churned"
	NewCustomer = "new"
	Regular     = "regular"
)

// DefaultConfig are the four groups of the business, in the order that
// makes each mean what it says: a buyer gone quiet for 30 days is churned
// (whatever they bought before), a frequent buyer who bought within 90
// days is high value, a visitor of less than 7 days who has not bought is
// new, one who has browsed longer without buying is potential; other
// buyers are regular.
func DefaultConfig() Config {
	return Config{
		Enabled: true,
		Rules: []Rule{
			{Segment: Churned, When: []string{"purchases >= 1", "days_since_last_event >= 30"}},
			{Segment: HighValue, When: []string{"purchases >= 3", "days_since_last_purchase <= 90"}},
			{Segment: NewCustomer, When: []string{"purchases = 0", "days_since_first_event < 7"}},
			{Segment: Potential, When: []string{"purchases = 0"}},
		},
		Fallback:     Regular,
		RecentWindow: 14 * 24 * time.Hour,
		History:      16,
	}
}

// MaxHistory bounds Config.History.
const MaxHistory = 256

// Validate checks the configuration on its own: names, conditions and
// bounds. internal/config adds suggestions for misspelt features.
func (c Config) Validate() error {
	var errs []error
	if len(c.Rules) == 0 {
		errs = append(errs, errors.New("rules: at least one rule is required"))
	}
	for i, r := range c.Rules {
		if err := CheckName(r.Segment); err != nil {
			errs = append(errs, fmt.Errorf("rules[%d].segment: %w", i, err))
		}
		if len(r.When) == 0 {
			errs = append(errs, fmt.Errorf("rules[%d] (%s).when: at least one condition is required", i, r.Segment))
		}
		for j, w := range r.When {
			if _, err := Parse(w); err != nil {
				errs = append(errs, fmt.Errorf("rules[%d] (%s).when[%d]: %w", i, r.Segment, j, err))
			}
		}
	}
	if err := CheckName(c.Fallback); err != nil {
		errs = append(errs, fmt.Errorf("fallback: %w", err))
	}
	if c.RecentWindow <= 0 {
		errs = append(errs, fmt.Errorf("recent_window: must be positive, got %s", c.RecentWindow))
	}
	if c.History < 1 || c.History > MaxHistory {
		errs = append(errs, fmt.Errorf("history: must be between 1 and %d, got %d", MaxHistory, c.History))
	}
	return errors.Join(errs...)
}

// ErrName: a segment name is empty, too long or not a plain identifier
// (it is a metric label and a message field).
var ErrName = errors.New("segment names are 1 to 64 characters of a-z, 0-9 and _")

// CheckName reports whether name can be a segment's name.
func CheckName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("%q: %w", name, ErrName)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return fmt.Errorf("%q: %w", name, ErrName)
		}
	}
	return nil
}

// Names are the configured segments, in rule order, then the fallback,
// each once.
func (c Config) Names() []string {
	names := make([]string, 0, len(c.Rules)+1)
	add := func(name string) {
		if !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	for _, r := range c.Rules {
		add(r.Segment)
	}
	add(c.Fallback)
	return names
}
