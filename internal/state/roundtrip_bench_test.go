package state

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cxstream/cxstream/internal/testenv"
)

// BenchmarkRoundTrip is what one Load round trip costs in CPU, on the
// client (this process) and in redis-server, for one user (two HMGETs)
// and for 30 users: back to back, as under a backlog, and one every 2 ms,
// as a partition's batches come at half load, where each round trip also
// wakes the waiting goroutine and redis-server from idle. One op is one
// round trip; with the pause, ns/op includes it.
func BenchmarkRoundTrip(b *testing.B) {
	r := testenv.StartRedis(b)
	st := New(r.Client, Options{Prefix: "bench-rt"})
	for _, users := range []int{1, 30} {
		ids := make([]string, users)
		for i := range ids {
			ids[i] = "u" + strconv.Itoa(i)
		}
		for _, pause := range []time.Duration{0, 2 * time.Millisecond} {
			name := "users=" + strconv.Itoa(users) + "/back-to-back"
			if pause > 0 {
				name = "users=" + strconv.Itoa(users) + "/every-" + pause.String()
			}
			b.Run(name, func(b *testing.B) {
				ctx := context.Background()
				client0, redis0 := processCPU(b), redisCPU(b, r.Client)
				for b.Loop() {
					if _, err := st.Load(ctx, ids); err != nil {
						b.Fatal(err)
					}
					if pause > 0 {
						time.Sleep(pause)
					}
				}
				n := float64(b.N)
				b.ReportMetric(float64(processCPU(b)-client0)/n/1e3, "client-cpu-us/op")
				b.ReportMetric(float64(redisCPU(b, r.Client)-redis0)/n/1e3, "redis-cpu-us/op")
			})
		}
	}
}

// processCPU is the CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCPU is the CPU time redis-server has used (INFO cpu, main thread
// and children).
func redisCPU(b *testing.B, rdb *redis.Client) time.Duration {
	info, err := rdb.Info(context.Background(), "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	var total float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				b.Fatalf("INFO cpu %s: %v", k, err)
			}
			total += f
		}
	}
	return time.Duration(total * float64(time.Second))
}
