package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/schemas"
)

// `cxstream funnel --by` as an analyst runs it: per group, both
// attributions, JSON, and a clear refusal of what is not tracked.
func TestFunnelByProperty(t *testing.T) {
	r := testenv.StartRedis(t)
	cfgPath := filepath.Join(t.TempDir(), "cx.yaml")
	testenv.Must(t, os.WriteFile(cfgPath, []byte(`funnels:
  - name: purchase
    window: 24h
    breakdowns: [segment, property.utm_source]
    steps:
      - {name: view, events: [product_view]}
      - {name: buy, events: [purchase]}
`), 0o600), "config")
	defs := []funnel.Definition{{Name: "purchase", Window: 24 * time.Hour, Breakdowns: []string{"segment", "property.utm_source"},
		Steps: []funnel.Step{{Name: "view", Events: []string{"product_view"}}, {Name: "buy", Events: []string{"purchase"}}}}}
	fp, err := funnel.New(defs, 0)
	testenv.Must(t, err, "funnel")
	// Three users enter from ads; one of them buys after a newsletter
	// click (last touch: mail), one from mail buys in two minutes.
	t0 := int64(1_763_900_000_000)
	var writes []state.Write
	for i, path := range [][2]string{{"ads", ""}, {"ads", ""}, {"ads", "mail"}, {"mail", "mail"}} {
		st := funnel.State{}
		fp.Apply(st, schemas.ClickEvent{EventID: "v", Type: "product_view", EventTime: t0, Properties: map[string]any{"utm_source": path[0]}})
		if path[1] != "" {
			fp.Apply(st, schemas.ClickEvent{EventID: "p", Type: "purchase", EventTime: t0 + 120_000, Properties: map[string]any{"utm_source": path[1]}})
		}
		data, _ := json.Marshal(pipeline.ClickDoc{Funnel: st})
		writes = append(writes, state.Write{User: fmt.Sprint("u", i), Side: state.Click, Data: data})
	}
	testenv.Must(t, state.New(r.Client, state.Options{}).Save(context.Background(), writes), "seed")

	run := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		root := NewRoot(&out, &errOut)
		root.SetArgs(append([]string{"funnel", "--config", cfgPath, "--redis", r.Addr}, args...))
		err := root.Execute()
		return out.String(), err
	}
	out, err := run("--by", "property.utm_source")
	testenv.Must(t, err, "first touch")
	for _, want := range []string{
		`funnel "purchase" by property.utm_source, first touch: 4 attempts in 2 groups`,
		"  group attempts    view     buy conversions    median       p90\n",
		"  ads          3  100.0%   33.3%           1      2m0s      2m0s\n",
		"  mail         1  100.0%  100.0%           1      2m0s      2m0s\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("first touch lacks %q:\n%s", want, out)
		}
	}
	out, err = run("--by", "property.utm_source", "--attribution", "last")
	testenv.Must(t, err, "last touch")
	if !strings.Contains(out, "  mail         2  100.0%  100.0%           2      2m0s      2m0s\n") || !strings.Contains(out, "  ads          2  100.0%    0.0%           0         -         -\n") {
		t.Errorf("last touch:\n%s", out)
	}
	out, err = run("--by", "segment", "--json")
	testenv.Must(t, err, "json")
	var js []struct {
		Groups []struct {
			Value    string `json:"value"`
			Attempts int    `json:"attempts"`
			Open     int    `json:"open"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(out), &js); err != nil || len(js) != 1 || len(js[0].Groups) != 1 || js[0].Groups[0].Value != "(none)" ||
		js[0].Groups[0].Attempts != 4 || js[0].Groups[0].Open != 2 {
		t.Errorf("json (%v):\n%s", err, out)
	}
	out, err = run("--json")
	testenv.Must(t, err, "totals as json")
	var totals []struct {
		Funnel      string `json:"funnel"`
		Users       int    `json:"users"`
		Conversions int    `json:"conversions"`
		Median      int64  `json:"median_convert_ms"`
		Steps       []struct {
			Name       string `json:"name"`
			Reached    int    `json:"reached"`
			InProgress int    `json:"in_progress"`
		} `json:"steps"`
	}
	if err := json.Unmarshal([]byte(out), &totals); err != nil || len(totals) != 1 || totals[0].Users != 4 || totals[0].Conversions != 2 || totals[0].Median != 120_000 ||
		fmt.Sprint(totals[0].Steps) != "[{view 4 2} {buy 2 0}]" {
		t.Errorf("totals json (%v):\n%s", err, out)
	}
	for args, want := range map[string]string{
		"--by property.category":          `--by: no funnel breaks down by "property.category"; tracked: purchase: segment, property.utm_source`,
		"--by utm_source":                 `--by: invalid breakdown "utm_source"; accepted: segment or property.<name>`,
		"--by segment --attribution both": `--attribution: attribution must be first or last, got "both"`,
		"--attribution last":              "--attribution needs --by",
		"--by segment --by-hour 3":        "--by and --by-hour are separate reports",
	} {
		_, err := run(strings.Fields(args)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}
