package test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
	"gopkg.in/yaml.v3"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/metrics"
	"github.com/cxstream/cxstream/internal/testenv"
)

const deployments = "../deployments"

// decodeAll parses every YAML document of a file.
func decodeAll(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
}

// dig walks maps and lists: dig(x, "spec", "template", 0, "name").
func dig(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			l, _ := v.([]any)
			if k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func knownEnv() []string {
	var names []string
	for _, e := range config.Env {
		names = append(names, e.Name)
	}
	return names
}

func TestEveryYAMLFileParses(t *testing.T) {
	n := 0
	err := filepath.WalkDir(deployments, func(path string, d os.DirEntry, err error) error {
		if err == nil && (strings.HasSuffix(path, ".yml") || strings.HasSuffix(path, ".yaml")) {
			decodeAll(t, path)
			n++
		}
		return err
	})
	if err != nil || n < 10 {
		t.Fatalf("parsed %d YAML files: %v", n, err)
	}
}

func TestDockerfileIsMultiStageStaticAndNonRoot(t *testing.T) {
	raw, _ := os.ReadFile(filepath.Join(deployments, "Dockerfile"))
	s := string(raw)
	for _, want := range []string{" AS build", "CGO_ENABLED=0", "COPY --from=build", "USER nonroot", "./cmd/cxstream"} {
		if !strings.Contains(s, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	if strings.Count(s, "\nFROM ") < 1 || !strings.HasPrefix(strings.TrimSpace(s[strings.Index(s, "FROM"):]), "FROM") {
		t.Error("not a multi-stage build")
	}
}

func TestComposeStack(t *testing.T) {
	c := decodeAll(t, filepath.Join(deployments, "docker-compose.yml"))[0]
	services, _ := c["services"].(map[string]any)
	for _, s := range []string{"kafka", "kafka-init", "redis", "cxstream", "generator", "prometheus", "grafana"} {
		if services[s] == nil {
			t.Errorf("compose lacks service %s", s)
		}
	}
	for name, svc := range services {
		for _, v := range asList(dig(svc, "volumes")) {
			host := strings.SplitN(v.(string), ":", 2)[0]
			if strings.HasPrefix(host, ".") {
				if _, err := os.Stat(filepath.Join(deployments, host)); err != nil {
					t.Errorf("%s mounts %s, which does not exist", name, host)
				}
			}
		}
		for env := range asMap(dig(svc, "environment")) {
			if strings.HasPrefix(env, "CXSTREAM_") && !slices.Contains(knownEnv(), env) {
				t.Errorf("%s sets %s, which cxstream does not read", name, env)
			}
		}
	}
	if df := dig(services, "cxstream", "build", "dockerfile"); df != "deployments/Dockerfile" {
		t.Errorf("cxstream builds from %v", df)
	}
}

func TestKubernetesBase(t *testing.T) {
	base := filepath.Join(deployments, "kubernetes/base")
	kust := decodeAll(t, filepath.Join(base, "kustomization.yaml"))[0]
	byKind := map[string]map[string]any{}
	for _, r := range asList(kust["resources"]) {
		for _, d := range decodeAll(t, filepath.Join(base, r.(string))) {
			byKind[d["kind"].(string)] = d
		}
	}
	for _, k := range []string{"Deployment", "ConfigMap", "Service", "PodDisruptionBudget", "ScaledObject"} {
		if byKind[k] == nil {
			t.Fatalf("kustomization lacks a %s", k)
		}
	}
	dep, cm := byKind["Deployment"], byKind["ConfigMap"]
	ctr := dig(dep, "spec", "template", "spec", "containers", 0)
	if dig(ctr, "livenessProbe", "httpGet", "path") != "/healthz" || dig(ctr, "readinessProbe", "httpGet", "path") != "/readyz" {
		t.Error("probes must hit /healthz and /readyz")
	}
	portName := dig(ctr, "readinessProbe", "httpGet", "port")
	port := dig(ctr, "ports", 0, "containerPort")
	if dig(ctr, "ports", 0, "name") != portName {
		t.Errorf("probe port %v is not the container's port", portName)
	}
	for _, e := range asList(dig(ctr, "env")) {
		if n := dig(e, "name").(string); !slices.Contains(knownEnv(), n) {
			t.Errorf("deployment sets %s, which cxstream does not read", n)
		}
	}
	// The ConfigMap's config loads with the real loader and listens where
	// the probes look.
	path := filepath.Join(t.TempDir(), "cxstream.yaml")
	os.WriteFile(path, []byte(dig(cm, "data", "cxstream.yaml").(string)), 0o600)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the ConfigMap's config does not load: %v", err)
	}
	if !strings.HasSuffix(cfg.HTTP.Addr, ":"+jsonNumber(port)) {
		t.Errorf("config listens on %q, container port is %v", cfg.HTTP.Addr, port)
	}
	so := byKind["ScaledObject"]
	if dig(so, "spec", "scaleTargetRef", "name") != dig(dep, "metadata", "name") {
		t.Error("the ScaledObject does not target the Deployment")
	}
	for _, tr := range asList(dig(so, "spec", "triggers")) {
		if dig(tr, "metadata", "consumerGroup") != cfg.Kafka.Group {
			t.Errorf("KEDA watches group %v, cxstream uses %s", dig(tr, "metadata", "consumerGroup"), cfg.Kafka.Group)
		}
		if topic := dig(tr, "metadata", "topic"); topic != cfg.Topics.Clickstream && topic != cfg.Topics.Chat {
			t.Errorf("KEDA watches topic %v", topic)
		}
	}
	if grace := dig(dep, "spec", "template", "spec", "terminationGracePeriodSeconds").(int); grace <= int(cfg.Processing.ShutdownTimeout.Seconds())+5 {
		t.Errorf("terminationGracePeriodSeconds %d leaves no room for the %s shutdown", grace, cfg.Processing.ShutdownTimeout)
	}
}

// exportedMetricNames are the metric families a running processor exports:
// its own, and franz-go's kprom ones after some traffic.
// describedNames reads every metric name off a registry's descriptions:
// vectors show up in Gather only once they have a series, and kprom's
// only after its hooks fired, which made this check flaky.
func describedNames(r *prometheus.Registry, names map[string]bool) {
	ch := make(chan *prometheus.Desc, 256)
	go func() { r.Describe(ch); close(ch) }()
	re := regexp.MustCompile(`fqName: "([^"]+)"`)
	for d := range ch {
		if s := re.FindStringSubmatch(d.String()); s != nil {
			names[s[1]] = true
		}
	}
}

func exportedMetricNames(t *testing.T) map[string]bool {
	names := map[string]bool{}
	describedNames(metrics.New().Registry, names)
	// kprom registers its collectors when a client is created; nothing
	// needs to be produced or fetched.
	reg := prometheus.NewRegistry()
	cl, err := kgo.NewClient(kgo.SeedBrokers("127.0.0.1:1"), kgo.WithHooks(kprom.NewMetrics("cx_kafka", kprom.Registry(reg))))
	testenv.Must(t, err, "client")
	defer cl.Close()
	describedNames(reg, names)
	return names
}

var metricRE = regexp.MustCompile(`\bcx_[a-z_]+`)

// checkMetricsExist reports every cx_ metric in expr that cxstream does
// not export, and returns how many it checked.
func checkMetricsExist(t *testing.T, names map[string]bool, where, expr string) int {
	checked := 0
	for _, m := range metricRE.FindAllString(expr, -1) {
		base := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
		if !names[m] && !names[base] {
			t.Errorf("%s queries %s, which cxstream does not export", where, m)
		}
		checked++
	}
	return checked
}

func TestAlertRulesQueryExistingMetrics(t *testing.T) {
	names := exportedMetricNames(t)
	rules := decodeAll(t, filepath.Join(deployments, "prometheus/alerts.yml"))[0]
	var alerts []string
	for _, g := range asList(rules["groups"]) {
		for _, r := range asList(dig(g, "rules")) {
			name, _ := dig(r, "alert").(string)
			expr, _ := dig(r, "expr").(string)
			if name == "" || expr == "" || dig(r, "annotations", "summary") == nil {
				t.Errorf("rule %v lacks alert, expr or summary", r)
			}
			checkMetricsExist(t, names, "rule "+name, expr)
			alerts = append(alerts, name)
		}
	}
	for _, want := range []string{"CxstreamConsumerLagHigh", "CxstreamDeadLetterRateHigh", "CxstreamNotReady", "CxstreamQueueWaitingLong"} {
		if !slices.Contains(alerts, want) {
			t.Errorf("no %s rule; have %v", want, alerts)
		}
	}
	prom := decodeAll(t, filepath.Join(deployments, "prometheus/prometheus.yml"))[0]
	if files := asList(prom["rule_files"]); len(files) == 0 || files[0] != "/etc/prometheus/alerts.yml" {
		t.Errorf("prometheus.yml does not load the rules: %v", prom["rule_files"])
	}
}

func TestDashboardQueriesExistingMetrics(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(deployments, "grafana/dashboards/cxstream.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr, LegendFormat string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	names := exportedMetricNames(t)
	checked := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			checked += checkMetricsExist(t, names, "panel "+strconv.Quote(p.Title), tg.Expr)
			if tg.LegendFormat == "" {
				t.Errorf("panel %q: query %s has no legend", p.Title, tg.Expr)
			}
		}
	}
	if checked < 15 {
		t.Fatalf("only %d metric references checked", checked)
	}
	prom := decodeAll(t, filepath.Join(deployments, "prometheus/prometheus.yml"))[0]
	target := dig(prom, "scrape_configs", 0, "static_configs", 0, "targets", 0)
	if target != "cxstream:9108" {
		t.Errorf("prometheus scrapes %v", target)
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func jsonNumber(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
