// Package ingest reads records in the formats sources already produce
// (cxstream's own, the Segment Spec, or a declared mapping of field paths,
// value maps and time formats) into clickstream and chat events, and says
// which field is wrong when a record does not fit.
//
// Every record is converted to cxstream's message and then validated by
// the schemas package, so whatever the format, what reaches the processors
// passed the same rules.
package ingest

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cxstream/cxstream/schemas"
)

// Format names how a topic's records are written.
type Format string

// Formats.
const (
	// FormatCxstream: clickstream.v1/v2 or chat.v1 JSON (the default).
	FormatCxstream Format = "cxstream"
	// FormatSegment: Segment Spec track, page, screen and identify calls
	// (clickstream only).
	FormatSegment Format = "segment"
	// FormatMapping: JSON read through a declared Mapping.
	FormatMapping Format = "mapping"
)

// Kind is the stream a record belongs to.
type Kind string

// Kinds.
const (
	Click Kind = "clickstream"
	Chat  Kind = "chat"
)

// ReasonFormat is the dead-letter reason of a record that does not fit its
// topic's format; the detail names the field.
const ReasonFormat schemas.Reason = "format_violation"

// Input says how one topic's records are read: topics.input.<topic>.
type Input struct {
	// Format: cxstream (default), segment or mapping.
	Format Format `yaml:"format"`
	// Mapping is the mapping, inline; MappingFile reads it from a YAML
	// file instead (format mapping).
	Mapping     *Mapping `yaml:"mapping,omitempty"`
	MappingFile string   `yaml:"mapping_file,omitempty"`
	// DefaultCurrency is the currency of a Segment purchase without one.
	DefaultCurrency string `yaml:"default_currency,omitempty"`
}

// Inputs are the formats of the two input topics.
type Inputs struct {
	Clickstream Input `yaml:"clickstream"`
	Chat        Input `yaml:"chat"`
}

// Validate reports an input that cannot work, naming the key under
// topics.input.
func (in Inputs) Validate() error {
	if err := in.Clickstream.validate(Click); err != nil {
		return fmt.Errorf("topics.input.clickstream: %w", err)
	}
	if err := in.Chat.validate(Chat); err != nil {
		return fmt.Errorf("topics.input.chat: %w", err)
	}
	return nil
}

// Validate reports an input that cannot work for records of kind.
func (in Input) Validate(kind Kind) error { return in.validate(kind) }

func (in Input) validate(kind Kind) error {
	switch in.Format {
	case "", FormatCxstream:
	case FormatSegment:
		if kind == Chat {
			return errors.New("format: segment reads clickstream calls only; use mapping for chat")
		}
	case FormatMapping:
		m, err := in.Resolve()
		if err != nil {
			return err
		}
		if m == nil {
			return errors.New("format mapping needs mapping or mapping_file")
		}
		if err := m.Validate(kind); err != nil {
			return err
		}
	default:
		return fmt.Errorf("format: want cxstream, segment or mapping, got %q", in.Format)
	}
	if in.Mapping != nil && in.MappingFile != "" {
		return errors.New("give mapping or mapping_file, not both")
	}
	if c := in.DefaultCurrency; c != "" && !isCurrency(c) {
		return fmt.Errorf("default_currency: want an ISO 4217 code such as EUR, got %q", c)
	}
	return nil
}

// Resolve returns the input's mapping, reading MappingFile when set; nil
// when there is none.
func (in Input) Resolve() (*Mapping, error) {
	if in.MappingFile == "" {
		return in.Mapping, nil
	}
	return LoadMapping(in.MappingFile)
}

// LoadMapping reads a mapping from a YAML file (unknown keys are errors).
func LoadMapping(path string) (*Mapping, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("mapping: %w", err)
	}
	var m Mapping
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("mapping %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	return &m, nil
}

func isCurrency(c string) bool {
	return len(c) == 3 && strings.Trim(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") == ""
}

// clickFields and chatFields are the targets a mapping may fill.
var (
	clickFields = []string{"event_id", "user_id", "session_id", "type", "page", "item_id", "amount", "currency", "event_time"}
	chatFields  = []string{"event_id", "conversation_id", "user_id", "sender", "channel", "text", "language", "event_time"}
)

// IsField reports whether a mapping may fill field for records of kind.
func IsField(kind Kind, field string) bool { return targetAllowed(kind, field) }

func targetAllowed(kind Kind, field string) bool {
	if kind == Click && strings.HasPrefix(field, "properties.") && len(field) > len("properties.") {
		return true
	}
	if kind == Click {
		return slices.Contains(clickFields, field)
	}
	return slices.Contains(chatFields, field)
}
