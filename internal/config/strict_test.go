package config

import (
	"errors"
	"io/fs"
	"strings"
	"testing"
)

// Defect 1: a bad variable used to be swallowed and the ones after it
// dropped, so CXSTREAM_REDIS_CLUSTER=yes silently turned pseudonyms off.
func TestEveryBadVariableIsReportedAndNothingHalfApplied(t *testing.T) {
	_, err := Read("", []string{
		"CXSTREAM_REDIS_CLUSTER=yes",
		"CXSTREAM_PSEUDONYM_KEY=secret",
		"CXSTREAM_SHUTDOWN_TIMEOUT=abc",
		"CXSTREAM_PSEUDONYM_KY=typo",
		"PATH=/usr/bin",
	})
	if err == nil {
		t.Fatal("bad variables accepted")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want one line per bad variable (3), got %d:\n%v", len(lines), err)
	}
	for _, want := range []string{
		`CXSTREAM_REDIS_CLUSTER (redis.cluster): "yes" is not a boolean; accepted: true, false, 1, 0`,
		`CXSTREAM_SHUTDOWN_TIMEOUT (processing.shutdown_timeout): "abc" is not a duration`,
		`CXSTREAM_PSEUDONYM_KY: unknown variable (did you mean "CXSTREAM_PSEUDONYM_KEY"?)`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	var envErr *EnvError
	if !errors.As(err, &envErr) {
		t.Errorf("not an *EnvError: %T", err)
	}
}

func TestSecretValuesAreNotRepeatedInErrors(t *testing.T) {
	// A list with only commas is the one way a secret-free string
	// variable can fail; the secret ones accept anything, so check the
	// message path by hand.
	_, err := Read("", []string{"CXSTREAM_KAFKA_BROKERS=,,"})
	if err == nil || !strings.Contains(err.Error(), "empty list") {
		t.Fatalf("got %v", err)
	}
	for _, e := range Env {
		if strings.Contains(e.Name, "PASSWORD") || strings.Contains(e.Name, "KEY") {
			if !e.Secret {
				t.Errorf("%s is not marked secret", e.Name)
			}
		}
	}
}

func TestGoodVariablesAllApply(t *testing.T) {
	cfg, err := Read("", []string{"CXSTREAM_REDIS_CLUSTER=true", "CXSTREAM_PSEUDONYM_KEY=secret", "CXSTREAM_KAFKA_INSTANCE_ID=cx-0", "CXSTREAM_SHUTDOWN_TIMEOUT=7s"})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Redis.Cluster || cfg.Privacy.PseudonymKey != "secret" || cfg.Kafka.InstanceID != "cx-0" || cfg.Processing.ShutdownTimeout.Seconds() != 7 {
		t.Fatalf("not applied: %+v", cfg)
	}
}

// Defect 2: a missing file fell back to the defaults.
func TestMissingFileIsATypedError(t *testing.T) {
	_, err := Load("/nope.yaml")
	var fe *FileError
	if !errors.As(err, &fe) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("got %T %v", err, err)
	}
	if err.Error() != "config /nope.yaml: no such file" {
		t.Fatalf("message %q", err.Error())
	}
}

// Defect 3: funnel mistakes gave silent zeros.
func TestFunnelMistakesAreRejectedWithASuggestion(t *testing.T) {
	cases := map[string][]string{
		"funnels:\n  - name: f\n    window: 1h\n    steps:\n      - {name: a, events: [page_veiw]}\n      - {name: b, events: [purchase]}\n": {
			`funnels.f.steps.a.events: unknown event type "page_veiw" (did you mean "page_view"?)`},
		"funnels:\n  - name: f\n    window: 1h\n    hold_constant: sesion_id\n    steps:\n      - {name: a, events: [page_view]}\n      - {name: b, events: [purchase]}\n": {
			`funnels.f.hold_constant: unknown field "sesion_id" (did you mean "session_id"?)`},
		"funnels:\n  - name: f\n    window: 1h\n    steps:\n      - {name: a, events: [page_view], where: {colour: red}}\n      - {name: b, events: [purchase]}\n": {
			`funnels.f.steps.a.where: unknown field "colour"`},
		"funnels:\n  - name: f\n    window: 1h\n    steps:\n      - {name: a, events: [page_view]}\n      - {name: a, events: [purchase]}\n": {
			`funnels.f.steps.a: step name "a" is used twice in funnel "f"`},
		"funnels: []\n": {`funnels: no funnel is defined`},
		// Every problem at once, not only the first.
		"funnels:\n  - name: f\n    window: 1h\n    steps:\n      - {name: a, events: [page_veiw]}\n      - {name: b, events: [purchse]}\nlog:\n  level: loud\n": {
			`"page_veiw"`, `"purchse" (did you mean "purchase"?)`, "log.level"},
	}
	for body, wants := range cases {
		_, err := Load(write(t, body))
		var ve *ValidationError
		if !errors.As(err, &ve) {
			t.Errorf("%q: got %T %v, want a *ValidationError", body, err, err)
			continue
		}
		for _, want := range wants {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q:\n%v\nwant it to contain %q", body, err, want)
			}
		}
	}
}

func TestPropertiesFieldsAreAccepted(t *testing.T) {
	_, err := Load(write(t, "funnels:\n  - name: f\n    window: 1h\n    hold_constant: properties.course\n    steps:\n      - {name: a, events: [page_view], where: {properties.utm_source: ads, page: /x}}\n      - {name: b, events: [purchase]}\n"))
	if err != nil {
		t.Fatal(err)
	}
}

// Kubernetes injects FOO_SERVICE_HOST and friends for every Service of the
// namespace; the base's Service cxstream-metrics must not stop the pods.
func TestKubernetesServiceLinksAreNotUnknownVariables(t *testing.T) {
	_, err := Read("", []string{
		"CXSTREAM_METRICS_SERVICE_HOST=10.0.0.7", "CXSTREAM_METRICS_SERVICE_PORT=9108", "CXSTREAM_METRICS_SERVICE_PORT_METRICS=9108",
		"CXSTREAM_METRICS_PORT=tcp://10.0.0.7:9108", "CXSTREAM_METRICS_PORT_9108_TCP=tcp://10.0.0.7:9108",
		"CXSTREAM_METRICS_PORT_9108_TCP_ADDR=10.0.0.7", "CXSTREAM_METRICS_PORT_9108_TCP_PROTO=tcp", "CXSTREAM_METRICS_PORT_9108_TCP_PORT=9108",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Read("", []string{"CXSTREAM_REDIS_ADRS=x:1"}); err == nil {
		t.Fatal("a misspelt variable was accepted")
	}
}
