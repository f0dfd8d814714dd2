package deliver

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cxstream/cxstream/internal/redact"
	"github.com/cxstream/cxstream/schemas"
)

// Erasure is the webhook body announcing that a user was erased
// (`cxstream forget`): the receiver deletes what it keeps about the user.
type Erasure struct {
	Type string `json:"type"` // always "erasure"
	// AlertID identifies this erasure notice for deduplication, like an
	// alert's id.
	AlertID string `json:"alert_id"`
	UserID  string `json:"user_id"`
	// ErasedAt is when the tombstone was published (ms since the epoch).
	ErasedAt int64 `json:"erased_at"`
}

// erasureBody is the webhook body of a tombstone. Its id derives from the
// user and the tombstone's time, so a redelivery repeats it.
func erasureBody(userID string, at int64) (id string, body []byte) {
	id = schemas.AlertID("erasure", userID, fmt.Sprint(at))
	body, _ = json.Marshal(Erasure{Type: "erasure", AlertID: id, UserID: userID, ErasedAt: at})
	return id, body
}

// webhookBody is the alert as alert.v2 JSON: the record's own bytes when
// it is v2 (fields added later pass through), else the upgraded alert.
func webhookBody(a schemas.Alert, raw []byte, rawIsV2 bool) []byte {
	if rawIsV2 {
		return raw
	}
	b, _ := json.Marshal(a)
	return b
}

// slackBody is a short Slack message: priority, type, user, reasons and
// the redacted excerpt. Slack's mrkdwn control characters in values are
// escaped, so an excerpt cannot ping a channel or forge a link.
func slackBody(a schemas.Alert) []byte {
	var b strings.Builder
	icon := ":information_source:"
	switch a.Priority {
	case schemas.PriorityUrgent:
		icon = ":rotating_light:"
	case schemas.PriorityHigh:
		icon = ":warning:"
	}
	fmt.Fprintf(&b, "%s *%s* %s · user `%s`", icon, a.Priority, slackEscape(a.Type), slackEscape(a.UserID))
	if a.ConversationID != "" {
		fmt.Fprintf(&b, " · conversation `%s`", slackEscape(a.ConversationID))
	}
	switch {
	case a.Sentiment != nil:
		fmt.Fprintf(&b, " · sentiment %+.2f", *a.Sentiment)
	case a.ChurnProbability != nil:
		fmt.Fprintf(&b, " · churn risk %.0f%%", *a.ChurnProbability*100)
	}
	for i, r := range a.Reasons {
		if i == 5 {
			fmt.Fprintf(&b, "\n• and %d more", len(a.Reasons)-i)
			break
		}
		fmt.Fprintf(&b, "\n• %s", slackEscape(r.Text))
	}
	if a.Excerpt != "" {
		fmt.Fprintf(&b, "\n> %s", slackEscape(redact.Clip(strings.ReplaceAll(a.Excerpt, "\n", " "), 200)))
	}
	out, _ := json.Marshal(map[string]string{"text": b.String()})
	return out
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

func slackEscape(s string) string { return slackEscaper.Replace(s) }
