package alertsink

import (
	"fmt"
	"strings"
	"time"

	"github.com/cxstream/cxstream/internal/redact"
	"github.com/cxstream/cxstream/schemas"
)

// OneLine renders an alert for people watching a terminal.
func OneLine(a schemas.Alert) string {
	excerpt := ""
	if a.Excerpt != "" {
		excerpt = fmt.Sprintf(" | %q", redact.Clip(a.Excerpt, 70))
	}
	figure := ""
	switch {
	case a.Sentiment != nil:
		figure = fmt.Sprintf(" sentiment %+.2f", *a.Sentiment)
	case a.ChurnProbability != nil:
		figure = fmt.Sprintf(" churn %.2f", *a.ChurnProbability)
	}
	return fmt.Sprintf("%s %-6s %-13s %-12s%s | %s%s",
		time.UnixMilli(a.DetectedAt).Format("15:04:05"), a.Priority, a.Type, a.UserID, figure, strings.Join(a.ReasonTexts(), "; "), excerpt)
}
