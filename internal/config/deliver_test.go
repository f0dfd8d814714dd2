package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDeliverSectionLoadsAndValidates(t *testing.T) {
	p := write(t, `deliver:
  destinations:
    - name: helpdesk
      url: https://helpdesk.example.com/hooks/cx
      secret: env:TEST_HELPDESK_SECRET
      types: [negative_chat, sla_breach]
      min_priority: high
    - name: slack-support
      kind: slack
      url: file:`+filepath.Join(t.TempDir(), "missing")+`
`)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Deliver.Destinations[0].WithDefaults()
	if cfg.Deliver.Group != "cxstream-deliver" || d.MaxAttempts != DefaultDeliverMaxAttempts || d.Timeout != DefaultDeliverTimeout ||
		d.DeadLetterTopic != "cx.deliver.deadletter.helpdesk" || d.Kind != "webhook" {
		t.Fatalf("defaults: %+v %+v", cfg.Deliver, d)
	}
	// Secrets are read at start, and their errors name the key only.
	if _, err := d.Resolve(); err == nil || !strings.Contains(err.Error(), "TEST_HELPDESK_SECRET") {
		t.Errorf("unset env secret: %v", err)
	}
	t.Setenv("TEST_HELPDESK_SECRET", "s3cret")
	if r, err := d.Resolve(); err != nil || r.Secret != "s3cret" || r.URL != "https://helpdesk.example.com/hooks/cx" {
		t.Errorf("resolved %+v, %v", r, err)
	}
	if _, err := cfg.Deliver.Destinations[1].Resolve(); err == nil || strings.Contains(err.Error(), "missing") == false {
		t.Errorf("missing url file: %v", err)
	}
	secretURL := filepath.Join(t.TempDir(), "slack")
	if err := os.WriteFile(secretURL, []byte("https://hooks.slack.com/services/T/B/TOKEN\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := cfg.Deliver.Destinations[1]
	s.URL = "file:" + secretURL
	if r, err := s.Resolve(); err != nil || r.URL != "https://hooks.slack.com/services/T/B/TOKEN" || r.Secret != "" {
		t.Errorf("slack url from a file: %+v %v", r, err)
	}
}

func TestDeliverValidationNamesTheKey(t *testing.T) {
	base := func() Deliver {
		d := DefaultDeliver()
		d.Destinations = []DeliverDestination{{Name: "a", URL: "https://x.example/h", Secret: "s"}}
		return d
	}
	cases := map[string]struct {
		edit func(*Deliver)
		want string
	}{
		"webhook without secret": {func(d *Deliver) { d.Destinations[0].Secret = "" }, "destinations[0].secret"},
		"bad kind":               {func(d *Deliver) { d.Destinations[0].Kind = "email" }, "destinations[0].kind"},
		"bad url":                {func(d *Deliver) { d.Destinations[0].URL = "ftp://x/TOKEN" }, "destinations[0].url"},
		"bad priority":           {func(d *Deliver) { d.Destinations[0].MinPriority = "SOON" }, "min_priority"},
		"duplicate name":         {func(d *Deliver) { d.Destinations = append(d.Destinations, d.Destinations[0]) }, "destinations[1].name"},
		"bad name":               {func(d *Deliver) { d.Destinations[0].Name = "Has Space" }, "destinations[0].name"},
		"bad type":               {func(d *Deliver) { d.Destinations[0].Types = []string{"Negative"} }, "types"},
		"attempts":               {func(d *Deliver) { d.Destinations[0].MaxAttempts = -1 }, "max_attempts"},
		"timeout":                {func(d *Deliver) { d.Destinations[0].Timeout = -time.Second }, "timeout"},
		"concurrency":            {func(d *Deliver) { d.Concurrency = 0 }, "deliver.concurrency"},
		"backoff":                {func(d *Deliver) { d.MaxBackoff = time.Millisecond }, "initial_backoff"},
	}
	for name, c := range cases {
		d := base()
		c.edit(&d)
		err := d.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want it to name %q", name, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "TOKEN") {
			t.Errorf("%s: the error quotes the url: %v", name, err)
		}
	}
	if err := base().Validate(); err != nil {
		t.Fatal(err)
	}
}
