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
