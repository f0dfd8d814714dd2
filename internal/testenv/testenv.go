// Package testenv starts the real services integration tests need: a
// redis-server process on a free loopback port, and an in-process kfake
// Kafka cluster. When CI=true a service that cannot start fails the test;
// elsewhere it skips it with the reason.
package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Unavailable fails under CI and skips elsewhere.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("required service unavailable: "+format, args...)
	}
	t.Skipf("service unavailable (set CI=true to fail instead): "+format, args...)
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Redis is a running redis-server.
type Redis struct {
	Addr   string
	Client *redis.Client
	cmd    *exec.Cmd
	port   int
	bin    string
	dir    string
	// persistent servers write an fsync-always append-only file, so a
	// restart keeps the data.
	persistent bool
	t          testing.TB
}

// StartRedis starts redis-server (no persistence) on a free port; it is
// stopped when the test ends.
func StartRedis(t testing.TB) *Redis { return startRedis(t, false) }

// StartPersistentRedis starts redis-server with an fsync-always
// append-only file, so Stop and Start keep the data.
func StartPersistentRedis(t testing.TB) *Redis { return startRedis(t, true) }

func startRedis(t testing.TB, persistent bool) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(t, "redis-server is not on PATH (apt-get install redis-server)")
	}
	r := &Redis{port: FreePort(t), bin: bin, dir: t.TempDir(), persistent: persistent, t: t}
	r.Addr = "127.0.0.1:" + strconv.Itoa(r.port)
	r.Start()
	r.Client = redis.NewClient(&redis.Options{Addr: r.Addr})
	t.Cleanup(func() {
		r.Client.Close()
		r.Kill()
	})
	return r
}

// Start starts the server again after Stop or Kill, on the same port and
// data directory.
func (r *Redis) Start() {
	t := r.t
	t.Helper()
	args := []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--dir", r.dir}
	if r.persistent {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	r.cmd = exec.Command(r.bin, args...)
	if err := r.cmd.Start(); err != nil {
		Unavailable(t, "redis-server did not start: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			r.Kill()
			Unavailable(t, "redis-server on %s did not answer: %v", r.Addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts the server down gracefully (a persistent one keeps its data).
func (r *Redis) Stop() { r.signal(syscall.SIGTERM) }

// Kill kills the server.
func (r *Redis) Kill() { r.signal(syscall.SIGKILL) }

func (r *Redis) signal(sig syscall.Signal) {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Signal(sig)
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// Kafka is an in-process kfake cluster.
type Kafka struct {
	Cluster *kfake.Cluster
	Brokers []string
}

// StartKafka starts a kfake cluster with the given topics, each with
// partitions partitions.
func StartKafka(t testing.TB, partitions int, topics ...string) *Kafka {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(partitions), topics...))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &Kafka{Cluster: c, Brokers: c.ListenAddrs()}
}

// Eventually polls cond every 20 ms until it holds or timeout passes.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Must fails the test on err.
func Must(t testing.TB, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatal(fmt.Errorf("%s: %w", what, err))
	}
}

// RedisCluster is a Redis Cluster of masters on loopback.
type RedisCluster struct {
	Addrs []string
	nodes []*exec.Cmd
}

// StartRedisCluster starts n redis-server masters in cluster mode and
// joins them with redis-cli --cluster create; they stop when the test ends.
func StartRedisCluster(t testing.TB, n int) *RedisCluster {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		Unavailable(t, "redis-server is not on PATH (apt-get install redis-server)")
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		Unavailable(t, "redis-cli is not on PATH (apt-get install redis-tools)")
	}
	c := &RedisCluster{}
	t.Cleanup(func() {
		for _, cmd := range c.nodes {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	for range n {
		port := FreePort(t)
		dir := t.TempDir()
		cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
			"--cluster-config-file", dir+"/nodes.conf", "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no", "--dir", dir)
		if err := cmd.Start(); err != nil {
			Unavailable(t, "redis-server (cluster) did not start: %v", err)
		}
		c.nodes = append(c.nodes, cmd)
		addr := "127.0.0.1:" + strconv.Itoa(port)
		c.Addrs = append(c.Addrs, addr)
		probe := redis.NewClient(&redis.Options{Addr: addr})
		deadline := time.Now().Add(10 * time.Second)
		for probe.Ping(context.Background()).Err() != nil {
			if time.Now().After(deadline) {
				probe.Close()
				Unavailable(t, "cluster node %s did not answer", addr)
			}
			time.Sleep(50 * time.Millisecond)
		}
		probe.Close()
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		Unavailable(t, "redis-cli --cluster create: %v\n%s", err, out)
	}
	// Every node must see the whole cluster as ok: a node that has not yet
	// heard of every slot's owner answers CLUSTERDOWN, whichever node the
	// client happens to ask first.
	deadline := time.Now().Add(20 * time.Second)
	for _, addr := range c.Addrs {
		node := redis.NewClient(&redis.Options{Addr: addr})
		for {
			info, err := node.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				node.Close()
				Unavailable(t, "cluster node %s did not reach state ok: %v %s", addr, err, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
		node.Close()
	}
	return c
}
