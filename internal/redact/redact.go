// Package redact masks personal data in free text before it leaves the
// processor in an alert excerpt: e-mail addresses, payment card numbers
// (Luhn-checked), IBANs, phone numbers, other long digit runs, and URLs that
// carry a query or token.
package redact

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Masks that replace what was found; they name the kind so an agent still
// knows what the customer wrote about.
const (
	MaskEmail  = "[email]"
	MaskCard   = "[card]"
	MaskIBAN   = "[iban]"
	MaskPhone  = "[phone]"
	MaskNumber = "[number]"
	MaskURL    = "[url]"
)

var (
	emailRE = regexp.MustCompile(`[\p{L}\p{N}._%+\-]+@[\p{L}\p{N}.\-]+\.\p{L}{2,}`)
	urlRE   = regexp.MustCompile(`(?i)\b(?:https?://|www\.)[^\s<>"']+`)
	ibanRE  = regexp.MustCompile(`\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b`)
	// Digit runs with optional separators: cards, phones, account numbers.
	digitsRE = regexp.MustCompile(`\+?\(?\d[\d\s\-().]{5,}\d`)
)

// Text returns s with personal data masked.
func Text(s string) string {
	s = emailRE.ReplaceAllString(s, MaskEmail)
	s = urlRE.ReplaceAllStringFunc(s, func(u string) string {
		if strings.ContainsAny(u, "?=#") || hasLongToken(u) {
			return MaskURL
		}
		return u
	})
	s = ibanRE.ReplaceAllString(s, MaskIBAN)
	s = digitsRE.ReplaceAllStringFunc(s, maskDigits)
	return s
}

// Excerpt redacts s and cuts it to at most limit runes on a rune boundary.
func Excerpt(s string, limit int) string {
	return Clip(Text(strings.TrimSpace(s)), limit)
}

// Clip cuts s to at most n runes, the last an ellipsis when it cut: how
// every table, card and message line shortens text.
func Clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

func maskDigits(run string) string {
	var digits []byte
	for i := 0; i < len(run); i++ {
		if run[i] >= '0' && run[i] <= '9' {
			digits = append(digits, run[i])
		}
	}
	switch {
	case len(digits) >= 13 && len(digits) <= 19 && luhn(digits):
		return MaskCard
	case len(digits) >= 7 && len(digits) <= 15 && (strings.HasPrefix(run, "+") || strings.ContainsAny(run, " -()")):
		return MaskPhone
	case len(digits) >= 6:
		return MaskNumber
	}
	return run
}

func luhn(digits []byte) bool {
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// hasLongToken reports a path segment that looks like a secret: 20+
// letters and digits mixed.
func hasLongToken(u string) bool {
	run, hasDigit, hasLetter := 0, false, false
	for _, r := range u {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' {
			run++
			hasDigit = hasDigit || unicode.IsDigit(r)
			hasLetter = hasLetter || unicode.IsLetter(r)
			if run >= 20 && hasDigit && hasLetter {
				return true
			}
			continue
		}
		run, hasDigit, hasLetter = 0, false, false
	}
	return false
}
