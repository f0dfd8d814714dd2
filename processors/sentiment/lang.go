package sentiment

import "unicode"

// Language is the language a message is scored in.
type Language string

// Languages the shipped models cover; any other text is Unknown and scores
// neutral with low confidence.
const (
	English Language = "en"
	Chinese Language = "zh"
	Unknown Language = ""
)

// Languages lists the covered languages in a fixed order.
var Languages = []Language{Chinese, English}

// DetectLanguage tells Chinese from English by script: a message with Han
// characters is Chinese unless Latin letters outnumber them more than three
// to one (an English sentence quoting one Chinese word); a message with
// Latin letters only is English; anything else (Cyrillic, Arabic, digits,
// emoji) is Unknown. A Han character carries about a word, so three Latin
// letters weigh like one.
func DetectLanguage(text string) Language {
	han, latin, other := 0, 0, 0
	for _, r := range text {
		switch {
		case unicode.Is(unicode.Han, r):
			han++
		case r < 0x250 && unicode.IsLetter(r):
			latin++
		case unicode.IsLetter(r):
			other++
		}
	}
	switch {
	case han > 0 && han*3 >= latin:
		return Chinese
	case latin > 0 && latin >= other:
		return English
	}
	return Unknown
}

// ParseLanguage accepts "zh" or "en" (as in --lang and sentiment.models).
func ParseLanguage(s string) (Language, error) {
	switch Language(s) {
	case English, Chinese:
		return Language(s), nil
	}
	return Unknown, &UnknownLanguageError{Name: s}
}

// UnknownLanguageError names a language no model covers.
type UnknownLanguageError struct{ Name string }

func (e *UnknownLanguageError) Error() string {
	return "sentiment: no model for language " + `"` + e.Name + `" (have zh, en)`
}
