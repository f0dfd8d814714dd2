// Package e2e runs the built cxstream binary as separate processes against
// a real Apache Kafka broker (started by test/kafka/start.sh) and real
// redis-server instances, produces the input and reads the alerts with
// kcat, and compares what ends up in Redis and on the alert topic with an
// independent batch reference computation (reference_test.go).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/testenv"
)

var (
	brokers  string // the shared real broker, host:port
	binPath  string // the cxstream binary under test
	repoRoot string
	kafkaRun string // the broker's run directory (for restarts)
)

func TestMain(m *testing.M) { os.Exit(runSuite(m)) }

func runSuite(m *testing.M) int {
	ci := os.Getenv("CI") == "true"
	var missing []string
	for _, tool := range []string{"java", "mvn", "kcat", "redis-server"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		if ci {
			fmt.Fprintf(os.Stderr, "FATAL: e2e needs %v on PATH\n", missing)
			return 1
		}
		fmt.Printf("e2e skipped: %v not on PATH (CI=true makes this a failure)\n", missing)
		return 0
	}
	wd, _ := os.Getwd()
	repoRoot = filepath.Clean(filepath.Join(wd, "..", ".."))
	tmp, err := os.MkdirTemp("", "cxstream-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	binPath = filepath.Join(tmp, "cxstream")
	buildArgs := []string{"build", "-o", binPath}
	if os.Getenv("CX_E2E_RACE") == "1" {
		buildArgs = append(buildArgs, "-race")
	}
	build := exec.Command("go", append(buildArgs, "./cmd/cxstream")...)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "FATAL: build cxstream: %v\n%s", err, out)
		return 1
	}

	kafkaRun = filepath.Join(tmp, "kafka")
	addr, err := startBroker()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FATAL: the Kafka broker did not start: %v\n", err)
		return 1
	}
	brokers = addr
	defer stopBroker()
	fmt.Printf("e2e: real Kafka broker at %s, binary %s\n", brokers, binPath)
	return m.Run()
}

func startBroker() (string, error) {
	cmd := exec.Command(filepath.Join(repoRoot, "test/kafka/start.sh"), kafkaRun)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: %s", err, stderr.String())
	}
	return strings.TrimSpace(string(out)), nil
}

func stopBroker() {
	_ = exec.Command(filepath.Join(repoRoot, "test/kafka/stop.sh"), kafkaRun).Run()
}

// stage is one scenario's world: its own topics, consumer group and Redis.
type stage struct {
	t       *testing.T
	prefix  string
	topics  map[string]string // clickstream, chat, alerts, deadletter, segments
	redis   *testenv.Redis
	cfgPath string
	adm     *kadm.Client
	procs   []*proc
}

type stageOptions struct {
	partitions      int
	persistentRedis bool
	// extraProcessing are more lines of the processing section.
	extraProcessing string
	// extraSections are more top-level sections (funnels, ...).
	extraSections string
	// sessionTimeout of the group (default 6s, short for dynamic members).
	sessionTimeout string
}

func newStage(t *testing.T, o stageOptions) *stage {
	t.Helper()
	s := &stage{t: t, prefix: "e2e-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")) + "-"}
	s.topics = map[string]string{
		"clickstream": s.prefix + "clickstream", "chat": s.prefix + "chat",
		"alerts": s.prefix + "alerts", "deadletter": s.prefix + "deadletter", "segments": s.prefix + "segments",
	}
	if o.persistentRedis {
		s.redis = testenv.StartPersistentRedis(t)
	} else {
		s.redis = testenv.StartRedis(t)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	testenv.Must(t, err, "admin client")
	t.Cleanup(cl.Close)
	s.adm = kadm.NewClient(cl)
	ctx := context.Background()
	for kind, topic := range s.topics {
		parts := int32(o.partitions)
		if kind == "alerts" || kind == "deadletter" || kind == "segments" {
			parts = 3
		}
		resp, err := s.adm.CreateTopic(ctx, parts, 1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		testenv.Must(t, err, "create topic "+topic)
	}
	// A new topic takes a moment to show in the broker's metadata, and
	// cxstream refuses to start on a missing one.
	testenv.Eventually(t, 30*time.Second, "topics visible", func() bool {
		var names []string
		for _, topic := range s.topics {
			names = append(names, topic)
		}
		details, err := s.adm.ListTopics(ctx, names...)
		if err != nil {
			return false
		}
		for _, name := range names {
			if d, ok := details[name]; !ok || d.Err != nil {
				return false
			}
		}
		return true
	})
	if o.sessionTimeout == "" {
		o.sessionTimeout = "6s"
	}
	cfg := fmt.Sprintf(`kafka:
  brokers: [%q]
  group: %q
  session_timeout: %s
  rebalance_timeout: 15s
redis:
  addrs: [%q]
topics:
  clickstream: %q
  chat: %q
  alerts: %q
  deadletter: %q
  segments: %q
processing:
  shutdown_timeout: 10s
  max_message_bytes: 262144
%slog:
  level: info
  format: json
%s`, brokers, s.prefix+"group", o.sessionTimeout, s.redis.Addr, s.topics["clickstream"], s.topics["chat"], s.topics["alerts"], s.topics["deadletter"], s.topics["segments"], o.extraProcessing, o.extraSections)
	s.cfgPath = filepath.Join(t.TempDir(), "cxstream.yaml")
	testenv.Must(t, os.WriteFile(s.cfgPath, []byte(cfg), 0o600), "write config")
	t.Cleanup(func() {
		for _, p := range s.procs {
			p.kill()
		}
	})
	return s
}

// proc is one running cxstream process.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	http    string
	logPath string
	exited  chan struct{}
	err     error
}

func (s *stage) start() *proc { return s.startAs("") }

// startAs starts an instance with a static group membership id ("" for a
// dynamic member).
func (s *stage) startAs(instanceID string) *proc {
	s.t.Helper()
	p := &proc{t: s.t, http: "127.0.0.1:" + strconv.Itoa(testenv.FreePort(s.t)), exited: make(chan struct{})}
	p.logPath = filepath.Join(s.t.TempDir(), fmt.Sprintf("cxstream-%d.log", len(s.procs)))
	logFile, err := os.Create(p.logPath)
	testenv.Must(s.t, err, "log file")
	p.cmd = exec.Command(binPath, "run", "--config", s.cfgPath, "--http-addr", p.http)
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if instanceID != "" {
		p.cmd.Env = append(os.Environ(), "CXSTREAM_KAFKA_INSTANCE_ID="+instanceID)
	}
	testenv.Must(s.t, p.cmd.Start(), "start cxstream")
	// A failed test shows what each of its instances logged last (the
	// logs live in the test's temporary directory, removed after it).
	s.t.Cleanup(func() {
		if s.t.Failed() {
			if b, err := os.ReadFile(p.logPath); err == nil {
				lines := strings.Split(strings.TrimSpace(string(b)), "\n")
				s.t.Logf("last lines of %s:\n%s", filepath.Base(p.logPath), strings.Join(lines[max(0, len(lines)-30):], "\n"))
			}
		}
	})
	go func() {
		p.err = p.cmd.Wait()
		logFile.Close()
		close(p.exited)
	}()
	s.procs = append(s.procs, p)
	return p
}

func (p *proc) alive() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *proc) kill() {
	if p.alive() {
		_ = p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.exited
}

// term sends SIGTERM and returns how long the process took to exit.
func (p *proc) term(limit time.Duration) time.Duration {
	p.t.Helper()
	start := time.Now()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(limit):
		p.kill()
		p.t.Fatalf("cxstream did not exit within %s of SIGTERM; log:\n%s", limit, p.logTail())
	}
	return time.Since(start)
}

func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// get fetches a path from the process's HTTP listener.
func (p *proc) get(path string) (int, string) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + p.http + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric reads one unlabelled-or-summed counter from /metrics.
func (p *proc) metric(name string) float64 {
	_, body := p.get("/metrics")
	total := 0.0
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			total += v
		}
	}
	return total
}

// produce writes the inputs with kcat, an independent Kafka client.
func (s *stage) produce(in []input) {
	s.t.Helper()
	byTopic := map[string]*bytes.Buffer{}
	for _, e := range in {
		topic := s.topics[e.kind]
		if byTopic[topic] == nil {
			byTopic[topic] = &bytes.Buffer{}
		}
		b := byTopic[topic]
		b.WriteString(e.key)
		b.WriteByte('\t')
		b.Write(e.value)
		b.WriteByte('\n')
	}
	for topic, b := range byTopic {
		cmd := exec.Command("kcat", "-P", "-b", brokers, "-t", topic, "-K", "\t", "-z", "lz4",
			"-X", "message.max.bytes=10000000", "-X", "enable.idempotence=true", "-X", "linger.ms=5")
		cmd.Stdin = b
		if out, err := cmd.CombinedOutput(); err != nil {
			s.t.Fatalf("kcat produce to %s: %v\n%s", topic, err, out)
		}
	}
}

// produceStream produces in chunks with pauses, so disturbances happen
// while events are still arriving; it returns when everything is produced.
func (s *stage) produceStream(in []input, chunks int, pause time.Duration) {
	size := (len(in) + chunks - 1) / chunks
	for i := 0; i < len(in); i += size {
		s.produce(in[i:min(i+size, len(in))])
		time.Sleep(pause)
	}
}

// lag is how many input records the group has not committed yet.
func (s *stage) lag() (int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	topics := []string{s.topics["clickstream"], s.topics["chat"]}
	ends, err := s.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return 0, err
	}
	committed, err := s.adm.FetchOffsets(ctx, s.prefix+"group")
	if err != nil {
		return 0, err
	}
	var lag int64
	ends.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(o.Topic, o.Partition)
		at := int64(0)
		if ok && c.At >= 0 {
			at = c.At
		}
		lag += o.Offset - at
	})
	return lag, nil
}

// waitCaughtUp waits until the group has committed every input record.
func (s *stage) waitCaughtUp(timeout time.Duration) {
	s.t.Helper()
	deadline := time.Now().Add(timeout)
	var last int64 = -1
	for time.Now().Before(deadline) {
		if !s.anyAlive() {
			break
		}
		lag, err := s.lag()
		if err == nil && lag == 0 {
			return
		}
		last = lag
		time.Sleep(250 * time.Millisecond)
	}
	var logs string
	for _, p := range s.procs {
		logs += p.logTail() + "\n---\n"
	}
	s.t.Fatalf("group still %d records behind after %s; logs:\n%s", last, timeout, logs)
}

func (s *stage) anyAlive() bool {
	for _, p := range s.procs {
		if p.alive() {
			return true
		}
	}
	return false
}

// alertRecord is an alert as kcat -J prints it.
type alertRecord struct {
	Partition int32    `json:"partition"`
	Offset    int64    `json:"offset"`
	Key       string   `json:"key"`
	Payload   string   `json:"payload"`
	Headers   []string `json:"headers"`
}

// readAlerts reads the whole alert topic with kcat.
func (s *stage) readAlerts() []alertRecord {
	s.t.Helper()
	cmd := exec.Command("kcat", "-C", "-b", brokers, "-t", s.topics["alerts"], "-o", "beginning", "-e", "-J", "-q")
	out, err := cmd.Output()
	if err != nil {
		s.t.Fatalf("kcat consume alerts: %v", err)
	}
	var recs []alertRecord
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var r alertRecord
		testenv.Must(s.t, json.Unmarshal(sc.Bytes(), &r), "kcat json line")
		recs = append(recs, r)
	}
	return recs
}

// readDeadLetters reads the dead-letter topic byte-exactly.
func (s *stage) readDeadLetters(want int) []*kgo.Record {
	s.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(s.topics["deadletter"]),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxBytes(64<<20))
	testenv.Must(s.t, err, "dlq consumer")
	defer cl.Close()
	var out []*kgo.Record
	deadline := time.Now().Add(20 * time.Second)
	for len(out) < want && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		out = append(out, cl.PollFetches(ctx).Records()...)
		cancel()
	}
	return out
}

// userDocs reads a user's two state documents straight from Redis.
func (s *stage) userDocs(user string) (click, chat map[string]any) {
	ctx := context.Background()
	for side, into := range map[string]*map[string]any{"click": &click, "chat": &chat} {
		data, err := s.redis.Client.HGet(ctx, "cx:{"+user+"}:"+side, "s").Result()
		if err != nil {
			continue
		}
		doc, err := pipeline.DocJSON([]byte(data)) // either encoding
		testenv.Must(s.t, err, "state document")
		testenv.Must(s.t, json.Unmarshal(doc, into), "state json")
	}
	return click, chat
}
