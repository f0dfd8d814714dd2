package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfigLoads(t *testing.T) {
	cfg, err := Load("../../deployments/cxstream.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Funnels) != 2 || cfg.Funnels[1].Steps[1].Where["properties.category"] != "course" || cfg.Redis.StateTTL != 2160*time.Hour {
		t.Fatalf("example not read as written: %+v", cfg)
	}
}

func write(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestEnvOverridesFile(t *testing.T) {
	p := write(t, "kafka:\n  brokers: [file:9092]\n  group: fromfile\n")
	t.Setenv("CXSTREAM_KAFKA_BROKERS", "a:1, b:2")
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Kafka.Brokers, ",") != "a:1,b:2" || cfg.Kafka.Group != "fromfile" {
		t.Fatalf("got %v %q", cfg.Kafka.Brokers, cfg.Kafka.Group)
	}
}

func TestErrorsNameTheKey(t *testing.T) {
	cases := map[string]string{
		"kafka:\n  brokrs: [x:1]\n":               "field brokrs not found",
		"redis:\n  addrs: [localhost]\n":          `"localhost" has no port`,
		"log:\n  level: loud\n":                   "log.level",
		"sentiment:\n  strong_negative: 2\n":      "sentiment: strong_negative",
		"funnels:\n  - name: x\n    window: 1h\n": "funnels",
		"processing:\n  shutdown_timeout: -1s\n":  "processing.shutdown_timeout",
	}
	for body, want := range cases {
		_, err := Load(write(t, body))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", body, err, want)
		}
	}
}

func TestSegmentsValidation(t *testing.T) {
	if cfg := Default(); cfg.Validate() != nil || !cfg.Segments.Enabled || cfg.Topics.Segments != "cx.segments.v1" || len(cfg.Segments.Rules) != 4 {
		t.Fatalf("default segments: %+v, %v", cfg.Segments, cfg.Validate())
	}
	p := write(t, `segments:
  rules:
    - segment: vip
      when: ["purchaes >= 3", "spend > lots", "lifecycle > new"]
    - segment: Big Spender
      when: []
  fallback: ""
  history: 0
sentiment:
  segment_priority: {vipp: 1, high_value: 7}
`)
	_, err := Load(p)
	for _, want := range []string{
		`segments.rules[0] (vip).when[0]: unknown feature "purchaes" (did you mean "purchases"?)`,
		`segments.rules[0] (vip).when[1]: "spend > lots": value does not fit the feature: spend is a number`,
		`segments.rules[0] (vip).when[2]`,
		`segments.rules[1] (Big Spender).segment: "Big Spender": segment names are`,
		`segments.rules[1] (Big Spender).when: at least one condition is required`,
		`segments.fallback: "": segment names are`,
		`segments.history: must be between 1 and 256, got 0`,
		`sentiment.segment_priority: unknown segment "vipp" (did you mean "vip"?)`,
		`sentiment.segment_priority: high_value: priority steps must be between 0 and 3, got 7`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in\n%v", want, err)
		}
	}
	// A file's rules replace the default ones; segments can be turned off.
	p = write(t, "segments:\n  rules:\n    - segment: pro\n      when: [\"properties.plan = pro\"]\n")
	cfg, err := Load(p)
	if err != nil || len(cfg.Segments.Rules) != 1 || cfg.Segments.Names()[1] != "regular" {
		t.Errorf("own rules: %+v %v", cfg.Segments, err)
	}
	// segment_priority adds to its default (high_value: 1), which is
	// harmless when no rule names high_value.
	cfg, err = Load(write(t, "sentiment:\n  segment_priority: {potential: 2}\n"))
	if err != nil || cfg.Sentiment.SegmentPriority["potential"] != 2 || cfg.Sentiment.SegmentPriority["high_value"] != 1 {
		t.Errorf("segment_priority: %v %v", cfg.Sentiment.SegmentPriority, err)
	}
	if cfg, err := Load(write(t, "segments:\n  enabled: false\n  rules: []\n")); err != nil || cfg.Segments.Enabled {
		t.Errorf("off: %v", err)
	}
}
