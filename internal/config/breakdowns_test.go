package config

import (
	"errors"
	"strings"
	"testing"
)

const twoSteps = "    window: 1h\n    steps:\n      - {name: a, events: [page_view]}\n      - {name: b, events: [purchase]}\n"

func TestBreakdownMistakesNameTheKey(t *testing.T) {
	cases := map[string][]string{
		"funnels:\n  - name: f\n    breakdowns: [utm_source]\n" + twoSteps: {
			`funnels.f.breakdowns: invalid breakdown "utm_source"; accepted: segment or property.<name>`},
		"funnels:\n  - name: f\n    breakdowns: [properties.utm_source]\n" + twoSteps: {
			`funnels.f.breakdowns: invalid breakdown "properties.utm_source" (did you mean "property.utm_source"?)`},
		"funnels:\n  - name: f\n    breakdowns: [segment, segment]\n" + twoSteps: {
			`funnels.f.breakdowns: "segment" is listed twice`},
		"funnels:\n  - name: f\n    breakdowns: [property.a, property.b, property.c, property.d, property.e, property.f, property.g, property.h, property.i]\n" + twoSteps: {
			`funnels.f.breakdowns: at most 8 breakdowns per funnel, got 9`},
		"funnel_breakdowns:\n  max_values: 0\n  max_value_length: 5000\n": {
			"funnel_breakdowns.max_values: must be 1 to 1000, got 0", "funnel_breakdowns.max_value_length: must be 1 to 1024, got 5000"},
		"funnel_breakdowns:\n  max_valuez: 3\n": {"max_valuez"},
	}
	for body, wants := range cases {
		_, err := Load(write(t, body))
		if err == nil {
			t.Errorf("%q: accepted", body)
			continue
		}
		for _, want := range wants {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q:\n%v\nwant it to contain %q", body, err, want)
			}
		}
	}
	var ve *ValidationError
	if _, err := Load(write(t, "funnels:\n  - name: f\n    breakdowns: [colour]\n"+twoSteps)); !errors.As(err, &ve) {
		t.Errorf("got %T, want a *ValidationError", err)
	}
}

func TestBreakdownsLoad(t *testing.T) {
	cfg, err := Load(write(t, "funnel_breakdowns:\n  max_values: 5\n  max_value_length: 16\nfunnels:\n  - name: f\n    breakdowns: [segment, property.utm_source]\n"+twoSteps))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Funnels[0].Breakdowns, ",") != "segment,property.utm_source" || cfg.Breakdown.MaxValues != 5 || cfg.Breakdown.MaxValueLength != 16 {
		t.Errorf("read %+v, %+v", cfg.Funnels[0].Breakdowns, cfg.Breakdown)
	}
	if d := Default(); strings.Join(d.Funnels[0].Breakdowns, ",") != "segment" || d.Breakdown.MaxValues != 20 || d.Breakdown.MaxValueLength != 64 {
		t.Errorf("defaults %+v, %+v", d.Funnels[0].Breakdowns, d.Breakdown)
	}
}
