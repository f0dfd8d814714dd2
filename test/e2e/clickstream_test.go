package e2e

import (
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A real clickstream (OTTO, test/testdata/otto), replayed in pieces into a
// running processor with `cxstream replay --mapping`, gives the funnel
// figures of a batch computation written here from the documented
// semantics: reach per step, conversions, drop-offs once the watermark
// has passed every window, and time to convert. The history is from 2022:
// wall-clock timers would abandon every attempt before its later events
// were read.
func TestRealClickstreamBackfillEqualsBatch(t *testing.T) {
	const window = 24 * time.Hour
	s := newStage(t, stageOptions{partitions: 3,
		// Pieces arrive well within idle_advance of each other; once the
		// history is in and the partitions are idle, the watermark moves
		// to now and every window still open is judged.
		extraProcessing: "  idle_advance: 15s\n  timer_interval: 250ms\n",
		extraSections: `events:
  other: [order]                 # OTTO's orders carry no price: an event of their own
funnels:
  - name: otto
    window: 24h
    steps:
      - {name: view, events: [product_view]}
      - {name: cart, events: [add_to_cart]}
      - {name: order, events: [order]}
`})
	data := filepath.Join(repoRoot, "test", "testdata", "otto")
	rows := readOtto(t, filepath.Join(data, "otto-sample.csv"))
	want := ottoBatch(rows, window)

	p := s.start()
	// Four pieces, each replayed by its own `cxstream replay`.
	pieces := 4
	per := (len(rows) + pieces - 1) / pieces
	for i := 0; i < len(rows); i += per {
		piece := filepath.Join(t.TempDir(), fmt.Sprintf("piece-%d.csv", i))
		writeOtto(t, piece, rows[i:min(i+per, len(rows))])
		out, err := exec.Command(binPath, "replay", piece, "-q", "--mapping", filepath.Join(data, "otto.mapping.yaml"), "--config", s.cfgPath).CombinedOutput()
		if err != nil {
			t.Fatalf("replay piece %d: %v\n%s", i/per, err, out)
		}
		time.Sleep(300 * time.Millisecond)
	}
	s.waitCaughtUp(2 * time.Minute)
	// Every window ends by the idle advance: nobody is left mid-funnel.
	var report string
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, err := exec.Command(binPath, "funnel", "--config", s.cfgPath).CombinedOutput()
		if err != nil {
			t.Fatalf("funnel: %v\n%s", err, out)
		}
		report = string(out)
		if strings.Contains(report, fmt.Sprintf("%d drop-offs", want.dropOffs)) || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	flat := regexp.MustCompile(`\s+`).ReplaceAllString(report, " ")
	for _, line := range want.lines() {
		if !strings.Contains(flat, line) {
			t.Errorf("report lacks %q; batch computation:\n%s\nreport:\n%s\nprocessor log:\n%s", line, strings.Join(want.lines(), "\n"), report, p.logTail())
		}
	}
	t.Logf("OTTO sample, %d events in %d pieces: %s", len(rows), pieces, strings.Join(want.lines(), "; "))
}

type ottoRow struct {
	session, aid, typ string
	ts                int64
}

func readOtto(t *testing.T, path string) []ottoRow {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []ottoRow
	for _, r := range recs[1:] {
		ts, _ := strconv.ParseInt(r[2], 10, 64)
		rows = append(rows, ottoRow{session: r[0], aid: r[1], ts: ts, typ: r[3]})
	}
	return rows
}

func writeOtto(t *testing.T, path string, rows []ottoRow) {
	var b strings.Builder
	b.WriteString("session,aid,ts,type\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "%s,%s,%d,%s\n", r.session, r.aid, r.ts, r.typ)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

type ottoFigures struct {
	users, conversions, dropOffs int
	reached                      [3]int
	took                         []int64 // ms, per conversion
}

// ottoBatch walks each session's events in time order through an ordered
// view -> cart -> order funnel: an attempt opens on a view, a repeated
// view does not restart it, the next step advances it, the window counts
// from the view, an event at or after the window's end first closes the
// attempt as a drop-off, and attempts still open at the end drop off.
func ottoBatch(rows []ottoRow, window time.Duration) ottoFigures {
	step := map[string]int{"clicks": 0, "carts": 1, "orders": 2}
	bySession := map[string][]ottoRow{}
	var order []string
	for _, r := range rows {
		if _, ok := bySession[r.session]; !ok {
			order = append(order, r.session)
		}
		bySession[r.session] = append(bySession[r.session], r)
	}
	var f ottoFigures
	w := window.Milliseconds()
	for _, id := range order {
		evs := bySession[id]
		slices.SortStableFunc(evs, func(a, b ottoRow) int { return int(a.ts - b.ts) })
		at, entered, used := -1, int64(0), false
		for _, e := range evs {
			k := step[e.typ]
			if at >= 0 && e.ts >= entered+w {
				f.dropOffs++
				at = -1
			}
			switch {
			case at < 0 && k == 0:
				at, entered, used = 0, e.ts, true
				f.reached[0]++
			case at >= 0 && k == at+1:
				at = k
				f.reached[k]++
				if k == 2 {
					f.conversions++
					f.took = append(f.took, e.ts-entered)
					at = -1
				}
			}
		}
		if at >= 0 {
			f.dropOffs++
		}
		if used {
			f.users++
		}
	}
	return f
}

// lines are the report lines the batch figures predict.
func (f ottoFigures) lines() []string {
	out := []string{fmt.Sprintf("funnel %q: %d users, %d conversions, %d drop-offs", "otto", f.users, f.conversions, f.dropOffs)}
	for i, name := range []string{"view", "cart", "order"} {
		out = append(out, fmt.Sprintf(" %d %s %d ", i+1, name, f.reached[i]))
	}
	if n := len(f.took); n > 0 {
		var total int64
		for _, d := range f.took {
			total += d
		}
		sorted := slices.Sorted(slices.Values(f.took))
		median := sorted[n/2]
		if n%2 == 0 {
			median = (sorted[n/2-1] + sorted[n/2]) / 2
		}
		ms := time.Millisecond
		out = append(out, fmt.Sprintf("mean %s, median %s", (time.Duration(total/int64(n))*ms).Round(time.Second), (time.Duration(median)*ms).Round(time.Second)))
	}
	return out
}
