package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/report"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/funnel"
)

// The e-commerce example loaded for real: `replay --mapping` alone into
// Kafka, the processor with the example's configuration, and the funnel
// report equal to what the sample's 8 rows give by hand: 3 users view, 2
// of them cart, 1 buys (after removing and re-adding the item).
func TestEcommerceExampleFunnelFigures(t *testing.T) {
	ex := "../../deployments/examples/"
	k := testenv.StartKafka(t, 2, "cx.clickstream.v1", "cx.chat.v1", "cx.alerts.v2", "cx.deadletter.v1", "cx.segments.v1")
	r := testenv.StartRedis(t)
	cfg, err := config.Load(ex + "ecommerce-2019.cxstream.yaml")
	testenv.Must(t, err, "example config")
	cfg.Kafka.Brokers, cfg.Redis.Addrs, cfg.HTTP.Addr = k.Brokers, []string{r.Addr}, ""
	p, err := runner.New(cfg, zap.NewNop(), runner.Options{})
	testenv.Must(t, err, "processor")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() { cancel(); <-done }()

	out, err := runArgs(t, "replay", ex+"ecommerce-2019-sample.csv", "--mapping", ex+"ecommerce-2019.mapping.yaml",
		"--config", ex+"ecommerce-2019.cxstream.yaml", "--brokers", strings.Join(k.Brokers, ","), "-q")
	if err != nil || !strings.Contains(out, "replayed 8 events (0 failed)") {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	testenv.Eventually(t, 15*time.Second, "8 events applied", func() bool { return p.Metrics.Sum("cx_events_applied_total", nil) >= 8 })
	fp, err := funnel.New(cfg.Funnels, cfg.Processing.AllowedLateness)
	testenv.Must(t, err, "funnel")
	stats, err := report.Funnels(context.Background(), p.Store, fp)
	testenv.Must(t, err, "report")
	if s := stats[0]; fmt.Sprint(s.Reached) != "[3 2 1]" || s.Conversions != 1 || s.Abandonments != 0 {
		t.Fatalf("funnel %+v, want reached [3 2 1], 1 conversion, no abandonment", s)
	}
	if d := p.Metrics.Sum("cx_deadletter_total", nil); d != 0 {
		t.Errorf("%v dead letters", d)
	}
}
