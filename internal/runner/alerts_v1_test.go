package runner

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

// With topics.alerts_v1 set, every alert goes to the v2 topic and, as
// alert.v1, to the v1 topic, with the same id and v1's meaning of score.
func TestAlertsAreAlsoWrittenAsV1WhenAsked(t *testing.T) {
	e := newEnv(t, "cx.alerts.v1")
	cfg := e.config("dual", "dual")
	cfg.Topics.AlertsV1 = "cx.alerts.v1"
	start(t, cfg)
	now := time.Now().UnixMilli() - 60_000
	produce(t, e.kafka.Brokers, chat("dora", "d1", "This is useless, I am furious, nobody answers and I want a refund now!", now))
	v2 := readTopic(t, e.kafka.Brokers, "cx.alerts.v2", 1)
	v1 := readTopic(t, e.kafka.Brokers, "cx.alerts.v1", 1)
	if len(v1) != 1 || len(v2) != 1 {
		t.Fatalf("%d v1 and %d v2 alerts, want one each", len(v1), len(v2))
	}
	v, _ := schemas.NewValidator(0)
	testenv.Must(t, v.Validate(schemas.AlertV2, v2[0].Value), "v2 alert")
	testenv.Must(t, v.Validate(schemas.AlertV1, v1[0].Value), "v1 alert")
	a, err := v.DecodeAlert(v2[0].Value)
	testenv.Must(t, err, "decode v2")
	var old schemas.V1Alert
	testenv.Must(t, json.Unmarshal(v1[0].Value, &old), "decode v1")
	if old.AlertID != a.AlertID || a.Sentiment == nil || old.Score != *a.Sentiment || len(old.Reasons) != len(a.Reasons) ||
		old.Reasons[0] != a.Reasons[0].Text || string(v1[0].Key) != "dora" || header(v1[0], "cx-alert-id") != a.AlertID {
		t.Errorf("v1 %+v does not render v2 %+v", old, a)
	}
	if a.Reasons[0].Code == "" || a.Reasons[0].Code == schemas.CodeV1Text {
		t.Errorf("v2 reasons are not coded: %+v", a.Reasons)
	}
}
