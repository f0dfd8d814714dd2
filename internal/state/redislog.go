package state

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// zapRedisLogger takes go-redis's own log lines (pool and reconnect
// chatter) into zap at debug level, so JSON log pipelines get no
// unstructured lines; outages are reported once by the processor's
// readiness watch instead.
type zapRedisLogger struct{ log *zap.Logger }

func (l zapRedisLogger) Printf(_ context.Context, format string, v ...any) {
	if ce := l.log.Check(zap.DebugLevel, "redis client"); ce != nil {
		ce.Write(zap.String("detail", fmt.Sprintf(format, v...)))
	}
}

// RouteClientLogs sends go-redis's log lines to log. go-redis keeps one
// logger per process, so the last call wins.
func RouteClientLogs(log *zap.Logger) { redis.SetLogger(zapRedisLogger{log}) }
