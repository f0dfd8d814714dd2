package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/processors/funnel"
)

// comparisonLateness is the comparison's allowed lateness: short, so
// that the watermark (latest click less the lateness) passes windows'
// ends well before the dataset's end.
const comparisonLateness = 5 * time.Second

// comparisonWindow is the comparison funnel's window: a quarter of the
// dataset's event-time span (events are 1 ms apart), at least 10 s, so
// that attempts are abandoned both by a later event and by timers, and
// some convert.
func comparisonWindow(events int) time.Duration {
	return max(10*time.Second, time.Duration(events)*time.Millisecond/4)
}

// Guarantees the Kafka Streams peer runs with, in order.
var peerGuarantees = []string{"at_least_once", "exactly_once_v2"}

// peerJar and peerLib are the peer's build output under PeerDir.
const (
	peerJar = "target/kstreams-peer.jar"
	peerLib = "target/lib"
)

// ErrPeerFailed: the peer did not run to the end of the dataset.
var ErrPeerFailed = errors.New("peer failed")

// comparisonFunnels are the funnels both systems run in the comparison:
// cxstream's default purchase funnel with the comparison window.
func comparisonFunnels(events int) []funnel.Definition {
	defs := funnel.DefaultDefinitions()
	for i := range defs {
		defs[i].Window = comparisonWindow(events)
	}
	return defs
}

// comparison gathers the systems' figures over the runs.
type comparison struct {
	events  int
	funnels []FunnelFigures
	systems []*systemSeries
}

type systemSeries struct {
	system, guarantee, work   string
	perS, perCPU, cpuPM, peak []float64
}

func (c *comparison) series(system, guarantee, work string) *systemSeries {
	for _, s := range c.systems {
		if s.system == system && s.guarantee == guarantee && s.work == work {
			return s
		}
	}
	s := &systemSeries{system: system, guarantee: guarantee, work: work}
	c.systems = append(c.systems, s)
	return s
}

func (s *systemSeries) add(events int, seconds, cpuSeconds, peakMB float64) {
	s.perS = append(s.perS, float64(events)/seconds)
	s.perCPU = append(s.perCPU, float64(events)/cpuSeconds)
	s.cpuPM = append(s.cpuPM, cpuSeconds/float64(events)*1e6)
	s.peak = append(s.peak, peakMB)
}

func (c *comparison) result() *Comparison {
	out := &Comparison{Peer: PeerKStreams, Events: c.events, FunnelWindowMs: comparisonWindow(c.events).Milliseconds(), LatenessMs: comparisonLateness.Milliseconds(), Funnels: c.funnels}
	for _, s := range c.systems {
		out.Systems = append(out.Systems, SystemRow{System: s.system, Guarantee: s.guarantee, Work: s.work, EventsPerS: Summarize(s.perS),
			EventsPerCPUSecond: Summarize(s.perCPU), CPUSecondsPerMillion: Summarize(s.cpuPM), PeakRSSMB: Summarize(s.peak)})
	}
	return out
}

// compare runs cxstream with the word-list scorer and the comparison
// funnel on d, then the peer with each guarantee on the same topics, and
// fails unless every system's funnel figures agree with cxstream's.
func (b *bencher) compare(ctx context.Context, d *dataset, c *comparison) (*comparison, error) {
	if c == nil {
		c = &comparison{events: d.events}
	}
	if err := b.pinSUT(); err != nil {
		return nil, err
	}
	b.phase(ctx, "comparison")
	cfg := b.comparisonConfig(d, comparisonFunnels(d.events), comparisonLateness)
	m, figs, err := b.processForFigures(ctx, d, cfg, nil)
	if err != nil {
		return nil, err
	}
	b.addCxstream(c, d, m, workAll)

	// The same work as the peer: no churn or segment processor, no funnel
	// breakdowns. Its funnel figures must be the same.
	b.phase(ctx, "comparison-peer-work")
	same := withPeerWork(b.comparisonConfig(d, comparisonFunnels(d.events), comparisonLateness))
	sm, sameFigs, err := b.processForFigures(ctx, d, same, peerWork)
	if err != nil {
		return nil, err
	}
	if err := CompareFunnels("cxstream", figs, "cxstream with the peer's work", sameFigs); err != nil {
		return nil, err
	}
	b.addCxstream(c, d, sm, workPeer)

	b.phase(ctx, "peer")
	for _, g := range peerGuarantees {
		pm, peerFigs, err := b.runPeer(ctx, d, cfg, g)
		if err != nil {
			return nil, err
		}
		if err := CompareFunnels("cxstream", figs, "kstreams", peerFigs); err != nil {
			return nil, fmt.Errorf("comparison with kstreams %s: %w", g, err)
		}
		c.series("kstreams", g, "").add(d.events, pm.seconds, pm.cpu, pm.peakRSSMB)
		b.logf("comparison: kstreams %s %.0f events/s, %.0f events per CPU s (JVM), funnel figures agree", g, float64(d.events)/pm.seconds, float64(d.events)/pm.cpu)
	}
	c.funnels = figs
	return c, nil
}

// What cxstream runs in the comparison: everything it does by default,
// and only what the peer does too.
const (
	workAll  = "all processors"
	workPeer = "the peer's work"
)

// peerWork are the processors doing what the peer does: the funnel (with
// dedup, fencing and timers, which the pipeline does for every processor)
// and the rolling negative-chat count (sentiment, with the word list).
var peerWork = []string{"funnel", "sentiment"}

// withPeerWork is cfg without segments and funnel breakdowns, to run with
// peerWork alone.
func withPeerWork(cfg config.Config) config.Config {
	cfg.Segments.Enabled = false
	cfg.Funnels = slices.Clone(cfg.Funnels)
	for i := range cfg.Funnels {
		cfg.Funnels[i].Breakdowns = nil
	}
	return cfg
}

func (b *bencher) addCxstream(c *comparison, d *dataset, m measured, work string) {
	seconds := float64(d.events) / m.perS
	cpu := m.cpuPerMillion * float64(d.events) / 1e6
	c.series("cxstream + redis-server", "", work).add(d.events, seconds, cpu, m.peakRSSMB+m.redisRSSMB)
	b.logf("comparison: cxstream (%s) %.0f events/s, %.0f events per CPU s (cxstream and redis-server)", work, m.perS, float64(d.events)/cpu)
	b.logf("comparison: cxstream's (%s) Redis per event: %s", work, m.redisCommands)
}

func (b *bencher) comparisonConfig(d *dataset, funnels []funnel.Definition, lateness time.Duration) config.Config {
	cfg := b.config(d)
	cfg.Funnels = funnels
	cfg.Processing.AllowedLateness = lateness
	// Timers move by event time only, as the peer's punctuator does: the
	// wall clock must not fire the dataset's windows once it is read.
	cfg.Processing.IdleAdvance = 0
	return cfg
}

// processForFigures runs cxstream with the word-list scorer over d and
// reads its funnel figures once everything is committed.
func (b *bencher) processForFigures(ctx context.Context, d *dataset, cfg config.Config, only []string) (measured, []FunnelFigures, error) {
	var figs []FunnelFigures
	m, err := b.process(ctx, d, cfg, runner.Options{Scorer: NewWordListScorer(NegativeWords()), Only: only}, func(*runner.Processor) error {
		var err error
		figs, err = b.cxstreamFunnels(ctx, cfg)
		return err
	})
	return m, figs, err
}

// cxstreamFunnels reads cxstream's funnel figures from its state in
// Redis, as `cxstream funnel` does.
func (b *bencher) cxstreamFunnels(ctx context.Context, cfg config.Config) ([]FunnelFigures, error) {
	fp, err := funnel.New(cfg.Funnels, cfg.Processing.AllowedLateness)
	if err != nil {
		return nil, err
	}
	stats, err := report.Funnels(ctx, state.New(b.rdb, state.Options{Prefix: cfg.Redis.KeyPrefix}), fp)
	if err != nil {
		return nil, err
	}
	out := make([]FunnelFigures, 0, len(stats))
	for _, s := range stats {
		f := FunnelFigures{Name: s.Name, Steps: s.Steps, Conversions: int64(s.Conversions), Abandonments: int64(s.Abandonments)}
		for _, n := range s.Reached {
			f.Reached = append(f.Reached, int64(n))
		}
		if len(f.Reached) > 0 {
			f.Entries = f.Reached[0]
		}
		out = append(out, f)
	}
	return out, nil
}

// buildPeer builds the peer's jar with Maven when it is missing.
func (b *bencher) buildPeer(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(b.o.PeerDir, "pom.xml")); err != nil {
		return fmt.Errorf("the kstreams peer: no Maven project in %s (run from the repository root or give --peer-dir): %w", b.o.PeerDir, err)
	}
	jar := filepath.Join(b.o.PeerDir, peerJar)
	if _, err := os.Stat(jar); err == nil {
		if libs, _ := filepath.Glob(filepath.Join(b.o.PeerDir, peerLib, "kafka-streams-*.jar")); len(libs) > 0 {
			return nil
		}
	}
	b.logf("building the Kafka Streams peer: mvn -q -f %s package", filepath.Join(b.o.PeerDir, "pom.xml"))
	out, err := exec.CommandContext(ctx, "mvn", "-B", "-q", "-f", filepath.Join(b.o.PeerDir, "pom.xml"), "package").CombinedOutput()
	if err != nil {
		return fmt.Errorf("build the kstreams peer (mvn package in %s): %w\n%s", b.o.PeerDir, err, tail(out, 4000))
	}
	return nil
}

// peerConfig is the JSON the peer reads (test/peers/kstreams PeerConfig).
type peerConfig struct {
	Bootstrap         string       `json:"bootstrap"`
	ApplicationID     string       `json:"application_id"`
	Guarantee         string       `json:"guarantee"`
	ClickstreamTopic  string       `json:"clickstream_topic"`
	ChatTopic         string       `json:"chat_topic"`
	AlertsTopic       string       `json:"alerts_topic"`
	StateDir          string       `json:"state_dir"`
	Threads           int          `json:"threads"`
	CommitIntervalMs  int64        `json:"commit_interval_ms"`
	DedupWindow       int          `json:"dedup_window"`
	AllowedLatenessMs int64        `json:"allowed_lateness_ms"`
	NegativeHistoryMs int64        `json:"negative_history_ms"`
	Funnels           []peerFunnel `json:"funnels"`
	NegativeWords     []string     `json:"negative_words"`
	FiguresPath       string       `json:"figures_path"`
}

type peerFunnel struct {
	Name     string     `json:"name"`
	WindowMs int64      `json:"window_ms"`
	Order    string     `json:"order"`
	Steps    []peerStep `json:"steps"`
}

type peerStep struct {
	Name   string   `json:"name"`
	Events []string `json:"events"`
}

// peerFunnels translates funnel definitions for the peer, which does
// ordered funnels without conditions, exclusions or held fields (what the
// comparison runs).
func peerFunnels(defs []funnel.Definition) ([]peerFunnel, error) {
	var out []peerFunnel
	for _, d := range defs {
		if (d.Order != "" && d.Order != funnel.Ordered) || len(d.Exclusions) > 0 || d.HoldConstant != "" {
			return nil, fmt.Errorf("funnel %q: the kstreams peer runs ordered funnels without exclusions or hold_constant", d.Name)
		}
		f := peerFunnel{Name: d.Name, WindowMs: d.Window.Milliseconds(), Order: string(funnel.Ordered)}
		for _, s := range d.Steps {
			if len(s.Where) > 0 {
				return nil, fmt.Errorf("funnel %q step %q: the kstreams peer runs steps without where", d.Name, s.Name)
			}
			f.Steps = append(f.Steps, peerStep{Name: s.Name, Events: s.Events})
		}
		out = append(out, f)
	}
	return out, nil
}

// peerMeasured is one peer run's figures.
type peerMeasured struct {
	seconds, cpu, peakRSSMB float64
}

// peerFigures is what the peer writes at its end.
type peerFigures struct {
	State     string          `json:"state"`
	Processed int64           `json:"processed"`
	Invalid   int64           `json:"invalid"`
	Funnels   []FunnelFigures `json:"funnels"`
}

// runPeer runs the Kafka Streams peer with guarantee on d until its
// group has committed everything, measuring time, the JVM's CPU and RSS
// from its first record on, then stops it and reads its funnel figures.
func (b *bencher) runPeer(ctx context.Context, d *dataset, cfg config.Config, guarantee string) (peerMeasured, []FunnelFigures, error) {
	dir, err := os.MkdirTemp("", "cxstream-bench-peer-")
	if err != nil {
		return peerMeasured{}, nil, err
	}
	defer os.RemoveAll(dir)
	b.seq++
	pc := peerConfig{
		Bootstrap:        strings.Join(b.o.Brokers, ","),
		ApplicationID:    fmt.Sprintf("bench-%s-peer-%d", b.run, b.seq),
		Guarantee:        guarantee,
		ClickstreamTopic: d.clickstream,
		ChatTopic:        d.chat,
		AlertsTopic:      fmt.Sprintf("%s-peer-%d", d.alerts, b.seq),
		StateDir:         filepath.Join(dir, "state"),
		Threads:          min(d.partitions, b.sutCores()),
		// As often as cxstream commits (processing.commit_interval): the
		// end of a run is "every offset committed" for both.
		CommitIntervalMs:  cfg.Processing.CommitInterval.Milliseconds(),
		DedupWindow:       cfg.Privacy.DedupWindow,
		AllowedLatenessMs: cfg.Processing.AllowedLateness.Milliseconds(),
		NegativeHistoryMs: cfg.Sentiment.History.Milliseconds(),
		NegativeWords:     NegativeWords(),
		FiguresPath:       filepath.Join(dir, "figures.json"),
	}
	if pc.Funnels, err = peerFunnels(cfg.Funnels); err != nil {
		return peerMeasured{}, nil, err
	}
	resp, err := b.adm.CreateTopic(ctx, int32(d.partitions), 1, nil, pc.AlertsTopic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return peerMeasured{}, nil, fmt.Errorf("create topic %s: %w", pc.AlertsTopic, err)
	}
	cfgPath := filepath.Join(dir, "peer.json")
	raw, _ := json.MarshalIndent(pc, "", "  ")
	if err := os.WriteFile(cfgPath, raw, 0o600); err != nil {
		return peerMeasured{}, nil, err
	}
	args := []string{"java", "-Xms256m", "-Xmx1g", "-XX:+UseG1GC", "-cp",
		filepath.Join(b.o.PeerDir, peerJar) + string(os.PathListSeparator) + filepath.Join(b.o.PeerDir, peerLib, "*"), "dev.cxstream.peer.Main", cfgPath}
	if b.cpus.SUT != "" {
		args = append([]string{"taskset", "-c", b.cpus.SUT}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	stderr := &tailWriter{max: 8000}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return peerMeasured{}, nil, err
	}
	if err := cmd.Start(); err != nil {
		return peerMeasured{}, nil, fmt.Errorf("start the kstreams peer: %w", err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		exited <- cmd.Wait()
	}()
	// stopPeer ends the JVM: SIGTERM (it writes its figures, then closes),
	// a kill after a minute.
	stopped := false
	stopPeer := func() error {
		if stopped {
			return nil
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		timeout := time.After(time.Minute)
		for {
			select {
			case _, ok := <-lines:
				if !ok {
					lines = nil
				}
			case err := <-exited:
				return err
			case <-timeout:
				_ = cmd.Process.Kill()
				return <-exited
			}
		}
	}
	defer func() { _ = stopPeer() }()
	failed := func(why string) error {
		return fmt.Errorf("%w: kstreams %s %s; its stderr:\n%s", ErrPeerFailed, guarantee, why, stderr.String())
	}

	var start time.Time
	var cpu0, peak float64
	deadline := time.Now().Add(10*time.Minute + time.Duration(d.events/1000)*time.Second)
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				stopped = true // nothing left to stop
				return peerMeasured{}, nil, failed(fmt.Sprintf("exited before the end of the dataset (%v)", <-exited))
			}
			if strings.HasPrefix(line, "first-record ") && start.IsZero() {
				start = time.Now()
				cpu0, _ = procCPUSeconds(pid)
				peak = procRSSMB(pid)
			}
			continue
		case <-ctx.Done():
			return peerMeasured{}, nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return peerMeasured{}, nil, failed("did not finish in time")
		}
		if start.IsZero() {
			continue
		}
		peak = max(peak, procRSSMB(pid))
		if lag, err := b.lag(ctx, d, pc.ApplicationID); err == nil && lag == 0 {
			break
		}
	}
	elapsed := time.Since(start)
	cpu1, err := procCPUSeconds(pid)
	if err != nil {
		return peerMeasured{}, nil, failed("CPU: " + err.Error())
	}
	m := peerMeasured{seconds: elapsed.Seconds(), cpu: cpu1 - cpu0, peakRSSMB: max(peak, procRSSMB(pid))}
	if err := stopPeer(); err != nil && !isSignalExit(err) {
		return m, nil, failed("stop: " + err.Error())
	}
	raw, err = os.ReadFile(pc.FiguresPath)
	if err != nil {
		return m, nil, failed("wrote no figures: " + err.Error())
	}
	var figs peerFigures
	if err := json.Unmarshal(raw, &figs); err != nil {
		return m, nil, failed("figures: " + err.Error())
	}
	if figs.State != "RUNNING" {
		return m, nil, failed("was " + figs.State + " when asked for its figures")
	}
	if figs.Invalid > 0 {
		b.logf("kstreams %s: %d records it could not read", guarantee, figs.Invalid)
	}
	return m, figs.Funnels, nil
}

// isSignalExit: the JVM exits 143 after SIGTERM once its hooks ran.
func isSignalExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && (ee.ExitCode() == 143 || ee.ExitCode() == -1)
}

// sutCores counts the cores of the system under test.
func (b *bencher) sutCores() int {
	if b.cpus.SUT == "" {
		return runtime.NumCPU()
	}
	n := 0
	for _, part := range strings.Split(b.cpus.SUT, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		var a, z int
		if _, err := fmt.Sscan(lo, &a); err != nil {
			continue
		}
		z = a
		if isRange {
			if _, err := fmt.Sscan(hi, &z); err != nil {
				continue
			}
		}
		n += max(0, z-a+1)
	}
	return max(1, n)
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = t.b[len(t.b)-t.max:]
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
