// Package privacy holds the personal-data controls that are not redaction:
// pseudonymous user ids.
package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/cxstream/cxstream/internal/secure"
)

// Pseudonymizer replaces user ids with a keyed HMAC before they become
// Redis keys or leave in alerts. The zero value (no key) leaves ids as
// they are.
type Pseudonymizer struct{ key []byte }

// NewPseudonymizer returns a pseudonymizer for key; an empty key disables
// pseudonymisation.
func NewPseudonymizer(key string) *Pseudonymizer {
	if key == "" {
		return &Pseudonymizer{}
	}
	return &Pseudonymizer{key: []byte(key)}
}

// Enabled reports whether ids are replaced.
func (p *Pseudonymizer) Enabled() bool { return p != nil && len(p.key) > 0 }

// ID returns the pseudonym of a user id ("p_" and 32 hex digits), or the id
// itself when disabled. The same id and key always give the same pseudonym.
func (p *Pseudonymizer) ID(userID string) string {
	if !p.Enabled() {
		return userID
	}
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(userID))
	var sum [sha256.Size]byte
	return "p_" + hex.EncodeToString(m.Sum(sum[:0])[:16])
}

// FromSecret returns the pseudonymizer for privacy.pseudonym_key as
// configured: the key itself, "file:/path", or empty (disabled).
func FromSecret(configured string) (*Pseudonymizer, error) {
	key, err := secure.Secret(configured)
	if err != nil {
		return nil, fmt.Errorf("privacy.pseudonym_key: %w", err)
	}
	return NewPseudonymizer(key), nil
}
