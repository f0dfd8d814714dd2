package schemas

import (
	"crypto/sha256"
	"encoding/hex"
)

// AlertID derives the deterministic alert_id of an alert from what caused
// it: the alert type, the user, and a seed that names the triggering fact
// (an event id, or a timer's due time). Processing the same input again
// yields the same id, so subscribers can recognise a duplicate.
func AlertID(alertType, userID, seed string) string {
	h := sha256.New()
	h.Write([]byte(alertType))
	h.Write([]byte{0})
	h.Write([]byte(userID))
	h.Write([]byte{0})
	h.Write([]byte(seed))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}
