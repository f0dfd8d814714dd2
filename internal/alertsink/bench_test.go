package alertsink

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/schemas"
)

// BenchmarkClaimResolve measures one agent's claim + resolve round trips
// against a real redis-server with 10,000 conversations waiting.
func BenchmarkClaimResolve(b *testing.B) {
	r := testenv.StartRedis(b)
	q := New(r.Client, Options{SLA: SLA{schemas.PriorityHigh: time.Hour}})
	ctx := context.Background()
	push := func(n, offset int) {
		var alerts []*schemas.Alert
		for i := range n {
			alerts = append(alerts, alert(fmt.Sprintf("u%d", offset+i), fmt.Sprintf("c%d", offset+i), schemas.PriorityFromRank(i%4), int64(offset+i)))
		}
		testenv.Must(b, q.Push(ctx, alerts), "push")
	}
	push(10000, 0)
	b.ResetTimer()
	for i := range b.N {
		if i%5000 == 4999 {
			b.StopTimer()
			push(5000, 10000+i)
			b.StartTimer()
		}
		it, err := q.Claim(ctx, ClaimOptions{Agent: "ana", Lease: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := q.Resolve(ctx, it.ConversationID, "ana", "resolved"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "claims+resolves/s")
}
