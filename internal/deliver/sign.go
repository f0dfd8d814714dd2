package deliver

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// HTTP headers of a delivery.
const (
	// HeaderTimestamp is the Unix time (seconds) the request was signed.
	HeaderTimestamp = "Cx-Timestamp"
	// HeaderSignature is "v1=" and the hex HMAC-SHA256, keyed with the
	// destination's secret, of the timestamp, a ".", and the raw body.
	HeaderSignature = "Cx-Signature"
	// HeaderAlertID repeats the body's alert_id: receivers drop a
	// delivery whose id they have already handled (deliveries are
	// at-least-once).
	HeaderAlertID = "Cx-Alert-Id"
	// HeaderIdempotencyKey carries the same id under the conventional
	// name some receivers deduplicate on.
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderEvent is "alert" or "erasure".
	HeaderEvent = "Cx-Event"
	// HeaderAttempt counts attempts of this delivery, from 1.
	HeaderAttempt = "Cx-Delivery-Attempt"
)

// DefaultTolerance is how old a signed timestamp Verify accepts.
const DefaultTolerance = 5 * time.Minute

// Verification errors.
var (
	ErrNoSignature  = errors.New("missing signature or timestamp")
	ErrBadSignature = errors.New("signature does not match")
	ErrStale        = errors.New("timestamp outside the tolerance")
)

// Sign returns the value of HeaderSignature for body signed at ts.
func Sign(secret []byte, ts int64, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(strconv.FormatInt(ts, 10)))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks a delivery as a receiver should: the timestamp is within
// tolerance of now (against replays) and one of the v1 signatures (comma
// separated, so a sender may sign with an old and a new secret while
// rotating) matches, compared in constant time.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, tolerance time.Duration) error {
	if timestamp == "" || signature == "" {
		return ErrNoSignature
	}
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: timestamp is not a number", ErrNoSignature)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return ErrStale
	}
	want := []byte(Sign(secret, ts, body))
	for _, s := range strings.Split(signature, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(s)), want) {
			return nil
		}
	}
	return ErrBadSignature
}
