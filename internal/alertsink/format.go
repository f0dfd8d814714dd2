package alertsink

import (
	"fmt"
	"strings"
	"time"

	"github.com/cxstream/cxstream/schemas"
)

// OneLine renders an alert for people watching a terminal.
func OneLine(a schemas.Alert) string {
	excerpt := ""
	if a.Excerpt != "" {
		excerpt = fmt.Sprintf(" | %q", truncate(a.Excerpt, 70))
	}
	return fmt.Sprintf("%s %-6s %-13s %-12s score %+.2f | %s%s",
		time.UnixMilli(a.DetectedAt).Format("15:04:05"), a.Priority, a.Type, a.UserID, a.Score, strings.Join(a.Reasons, "; "), excerpt)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
