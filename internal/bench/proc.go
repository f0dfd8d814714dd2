package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's CPU times (100 on
// every Linux architecture Go supports).
const clockTicks = 100

// procCPUSeconds is the user plus system CPU time of process pid, all its
// threads (for a JVM: RocksDB's and the garbage collector's too).
func procCPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its end.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	utime, err1 := strconv.ParseFloat(f[11], 64)
	stime, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	return (utime + stime) / clockTicks, nil
}

// procRSSMB is the resident set of process pid in MB (0 if unknown).
func procRSSMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			if f := strings.Fields(line); len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// localRedisPID returns the pid of the redis-server behind rdb when it runs
// on this machine (its CPU then counts in cxstream's CPU figures), else 0.
func localRedisPID(ctx context.Context, rdb *redis.Client) int {
	info, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			pid, err := strconv.Atoi(v)
			if err != nil {
				return 0
			}
			comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
			if err != nil || !strings.Contains(string(comm), "redis") {
				return 0 // another machine's (or container's) pid
			}
			return pid
		}
	}
	return 0
}

// CPUSets are the two core lists of --cpus A:B: the system under test and
// its state store on A, the broker and the load generator on B.
type CPUSets struct{ SUT, Load string }

// ParseCPUs reads "A:B", each a taskset core list such as 0 or 0-1 or 0,2.
func ParseCPUs(s string) (CPUSets, error) {
	a, b, ok := strings.Cut(s, ":")
	valid := func(l string) bool {
		if l == "" {
			return false
		}
		for _, r := range l {
			if (r < '0' || r > '9') && r != ',' && r != '-' {
				return false
			}
		}
		return true
	}
	if !ok || !valid(a) || !valid(b) {
		return CPUSets{}, fmt.Errorf("--cpus wants A:B, two core lists such as 0:1 or 0-1:2-3, got %q", s)
	}
	return CPUSets{SUT: a, Load: b}, nil
}

// pin sets the CPU affinity of every thread of pid to cpus (taskset -a).
func pin(pid int, cpus string) error {
	out, err := exec.Command("taskset", "-a", "-p", "-c", cpus, strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %s %d: %w: %s", cpus, pid, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// affinity returns the core list pid may run on (taskset -p -c).
func affinity(pid int) (string, error) {
	out, err := exec.Command("taskset", "-p", "-c", strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("taskset -p -c %d: %w: %s", pid, err, strings.TrimSpace(string(out)))
	}
	_, list, ok := strings.Cut(strings.TrimSpace(string(out)), ": ")
	if !ok {
		return "", fmt.Errorf("taskset -p -c %d: unexpected output %q", pid, out)
	}
	return list, nil
}

// cpuSample is cumulative CPU seconds at one moment: the machine's busy
// time (all cores, from /proc/stat), this process's and redis-server's.
type cpuSample struct {
	at                      time.Time
	machine, process, redis float64
	steal                   float64
	// gcCycles and gcCPU: this process's Go collections so far and the
	// runtime's estimate of the CPU seconds they took.
	gcCycles uint64
	gcCPU    float64
}

// cpuShares is CPU used over a span, in cores (CPU seconds per second).
type cpuShares struct {
	wall                    float64
	machine, process, redis float64
	// steal: cores the hypervisor took away while they had work.
	steal float64
	// gcCycles: Go collections in this process over the span; gc: the
	// cores they took.
	gcCycles uint64
	gc       float64
}

// cpuSplit samples the machine's, this process's and redis-server's CPU
// time now.
func (b *bencher) cpuSplit() cpuSample {
	gc := []metrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/cpu/classes/gc/total:cpu-seconds"}}
	metrics.Read(gc)
	busy, steal := machineSeconds()
	s := cpuSample{at: time.Now(), machine: busy, steal: steal, process: cpuSeconds(), redis: b.redisCPU()}
	if gc[0].Value.Kind() == metrics.KindUint64 && gc[1].Value.Kind() == metrics.KindFloat64 {
		s.gcCycles, s.gcCPU = gc[0].Value.Uint64(), gc[1].Value.Float64()
	}
	return s
}

func (s cpuSample) since(from cpuSample) cpuShares {
	wall := s.at.Sub(from.at).Seconds()
	if wall <= 0 {
		return cpuShares{}
	}
	return cpuShares{wall: wall, machine: (s.machine - from.machine) / wall, process: (s.process - from.process) / wall, redis: (s.redis - from.redis) / wall,
		steal: (s.steal - from.steal) / wall, gcCycles: s.gcCycles - from.gcCycles, gc: (s.gcCPU - from.gcCPU) / wall}
}

// machineSeconds is the CPU time all cores spent running something,
// and the time the hypervisor ran something else on them (steal), from
// the first line of /proc/stat; 0 when unreadable.
func machineSeconds() (busy, steal float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return busySeconds(line), stealSeconds(line)
}

// stealSeconds reads the steal field of /proc/stat's "cpu" line: time a
// virtual machine's cores were ready to run but the hypervisor gave the
// physical cores to something else.
func stealSeconds(line string) float64 {
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	x, _ := strconv.ParseFloat(f[8], 64)
	return x / clockTicks
}

// busySeconds reads /proc/stat's "cpu" line: user, nice, system, idle,
// iowait, irq, softirq, steal, guest, guest_nice, in clock ticks. Busy is
// all but idle and iowait (nothing to run), steal (the hypervisor ran
// another machine) and guest (already counted in user and nice).
func busySeconds(line string) float64 {
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy float64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 7 {
			continue
		}
		x, _ := strconv.ParseFloat(v, 64)
		busy += x
	}
	return busy / clockTicks
}

// machineCPUs is the number of CPUs /proc/stat counts (its cpuN lines),
// the cores machineSeconds adds up.
func machineCPUs() int {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if len(line) > 3 && strings.HasPrefix(line, "cpu") && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	return n
}
