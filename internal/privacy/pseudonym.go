// Package privacy holds the personal-data controls that are not redaction:
// pseudonymous user ids.
package privacy

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
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

// LoadKey returns the key given inline, or read from the file when the
// value starts with "file:" (for mounted secrets).
func LoadKey(value string) (string, error) {
	path, ok := strings.CutPrefix(value, "file:")
	if !ok {
		return value, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", errors.New("read pseudonymisation key file: " + err.Error())
	}
	return strings.TrimSpace(string(b)), nil
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
