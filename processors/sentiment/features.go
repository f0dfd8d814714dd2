package sentiment

import (
	"math"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// features is one message's feature vector: hashed n-grams (each worth
// 1/sqrt(len(hashed)), so long and short messages weigh alike) and a few
// dense features (bias, lexicon scores, complaint patterns) kept at the end
// of the weight vector. names is filled only when explaining a score.
type features struct {
	hashed []uint32
	dense  []float32
	names  []string
	// explain records a name per hashed feature (slow; for reasons only).
	explain bool
}

func (f *features) reset(denseLen int, explain bool) {
	f.hashed = f.hashed[:0]
	f.names = f.names[:0]
	f.explain = explain
	if cap(f.dense) < denseLen {
		f.dense = make([]float32, denseLen)
	}
	f.dense = f.dense[:denseLen]
	clear(f.dense)
}

// FNV-1a, 32 bits: cheap, stable across Go versions and platforms, which a
// committed model needs.
const (
	fnvOffset = 2166136261
	fnvPrime  = 16777619
)

func hashString(h uint32, s string) uint32 {
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= fnvPrime
	}
	return h
}

func hashRunes(h uint32, rs []rune) uint32 {
	var buf [4]byte
	for _, r := range rs {
		n := utf8.EncodeRune(buf[:], r)
		for i := 0; i < n; i++ {
			h ^= uint32(buf[i])
			h *= fnvPrime
		}
	}
	return h
}

// add records hashed feature h; name is kept only when explaining (the
// caller passes the runes or string it hashed).
func (f *features) addRunes(h uint32, g []rune) {
	f.hashed = append(f.hashed, h)
	if f.explain {
		f.names = append(f.names, string(g))
	}
}

func (f *features) addString(h uint32, name string) {
	f.hashed = append(f.hashed, h)
	if f.explain {
		f.names = append(f.names, name)
	}
}

// hashedValue is what each hashed feature counts for.
func (f *features) hashedValue() float32 {
	if len(f.hashed) == 0 {
		return 0
	}
	return float32(1 / math.Sqrt(float64(len(f.hashed))))
}

// Namespaces keep word, bigram and character n-gram hashes apart.
const (
	nsWord   = 'w'
	nsBigram = 'b'
	nsChar   = 'c'
	nsNeg    = 'n'
)

func nsHash(ns byte) uint32 { return (fnvOffset ^ uint32(ns)) * fnvPrime }

// englishTokens splits lower-cased text into words (letters, digits and
// apostrophes) and "!"/"?" marks, appending to dst. A @mention becomes
// "@user" and a link "<url>": who or where is not how the writer feels,
// and names would otherwise carry the sentiment of the training tweets.
func englishTokens(dst []string, lower string) []string {
	start := -1
	mention := false
	for i := 0; i < len(lower); {
		r, size := utf8.DecodeRuneInString(lower[i:])
		if start < 0 && (strings.HasPrefix(lower[i:], "http://") || strings.HasPrefix(lower[i:], "https://") || strings.HasPrefix(lower[i:], "www.")) {
			end := strings.IndexAny(lower[i:], " \t\n")
			if end < 0 {
				end = len(lower) - i
			}
			dst = append(dst, "<url>")
			i += end
			continue
		}
		word := unicode.IsLetter(r) || unicode.IsDigit(r) || r == '\'' || (r == '_' && start >= 0)
		if word {
			if start < 0 {
				start = i
			}
			i += size
			continue
		}
		if start >= 0 {
			dst = appendToken(dst, lower[start:i], mention)
			start, mention = -1, false
		}
		switch r {
		case '!', '?':
			dst = append(dst, lower[i:i+1])
		case '@':
			mention = true
		}
		i += size
	}
	if start >= 0 {
		dst = appendToken(dst, lower[start:], mention)
	}
	return dst
}

func appendToken(dst []string, tok string, mention bool) []string {
	if mention {
		return append(dst, "@user")
	}
	return append(dst, tok)
}

// charGramMark starts the name of an English character n-gram: a piece of
// a word, never given as a reason.
const charGramMark = "~"

// englishNegator: words that open a negation scope ("not happy", "never
// got a reply", "didn't work"): the next three words are also counted as
// negated.
func englishNegator(t string) bool {
	switch t {
	case "not", "no", "never", "nobody", "nothing", "cannot", "without", "neither", "nor":
		return true
	}
	return strings.HasSuffix(t, "n't")
}

// englishNgrams adds word 1-2-grams and character 3-5-grams within each
// word (with < > marking the word's edges).
func (f *features) englishNgrams(tokens []string, runes []rune) []rune {
	prev := "<s>"
	negated := 0 // words left in a negation scope
	for _, t := range tokens {
		if negated > 0 && t != "!" && t != "?" {
			f.hashed = append(f.hashed, hashString(nsHash(nsNeg), t))
			if f.explain {
				f.names = append(f.names, "not "+t)
			}
			negated--
		}
		switch {
		case t == "!" || t == "?":
			negated = 0
		case englishNegator(t):
			negated = 3
		}
		f.addString(hashString(nsHash(nsWord), t), t)
		h := hashString(hashString(hashString(nsHash(nsBigram), prev), " "), t)
		f.hashed = append(f.hashed, h)
		if f.explain {
			f.names = append(f.names, prev+" "+t)
		}
		prev = t
		if len(t) < 2 || len(t) > 24 || t == "!" || t == "?" || t == "@user" || t == "<url>" {
			continue
		}
		runes = append(runes[:0], '<')
		for _, r := range t {
			if unicode.IsDigit(r) {
				r = '0'
			}
			runes = append(runes, r)
		}
		runes = append(runes, '>')
		for n := 3; n <= 5; n++ {
			for i := 0; i+n <= len(runes); i++ {
				g := runes[i : i+n]
				f.hashed = append(f.hashed, hashRunes(nsHash(nsChar), g))
				if f.explain {
					f.names = append(f.names, charGramMark+string(g))
				}
			}
		}
	}
	return runes
}

// normalizeChinese folds full-width forms and compatibility characters
// (NFKC, as the training data was), lower-cases Latin letters and maps every
// digit to 0, so "2023" and "１９９８" count as the same shape.
func normalizeChinese(text string) string {
	s := norm.NFKC.String(text)
	return strings.Map(func(r rune) rune {
		switch {
		case unicode.IsDigit(r):
			return '0'
		case r == '？':
			return '?'
		case r == '！':
			return '!'
		}
		return unicode.ToLower(r)
	}, s)
}

// chineseNegators start a negation scope (longest first, so 没有 wins over 没).
var chineseNegators = []string{"一点也不", "根本不", "完全不", "从来不", "从来没", "没有", "无法", "不", "没", "别", "未", "无", "非"}

// chineseNgrams adds character 1-3-grams within runs of letters and digits
// (punctuation and spaces end a run), "!" and "?" marks, and negation
// features: after a negator, each character bigram within the next four
// characters is also counted as negated ("不太满意" and "没有很满意" both
// give ¬满意), so the model learns negated phrases across the words that
// separate them.
func (f *features) chineseNgrams(norm string, runes []rune) []rune {
	runes = runes[:0]
	flush := func() {
		for n := 1; n <= 3; n++ {
			for i := 0; i+n <= len(runes); i++ {
				g := runes[i : i+n]
				f.addRunes(hashRunes(nsHash(nsChar), g), g)
			}
		}
		runes = runes[:0]
	}
	for _, r := range norm {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			runes = append(runes, r)
			continue
		}
		flush()
		switch r {
		case '!':
			f.addString(hashString(nsHash(nsWord), "!"), "!")
		case '?':
			f.addString(hashString(nsHash(nsWord), "?"), "?")
		}
	}
	flush()
	for i := 0; i < len(norm); {
		neg := ""
		for _, n := range chineseNegators {
			if strings.HasPrefix(norm[i:], n) {
				neg = n
				break
			}
		}
		if neg == "" {
			_, size := utf8.DecodeRuneInString(norm[i:])
			i += size
			continue
		}
		i += len(neg)
		scope := runes[:0]
		for _, r := range norm[i:] {
			if !(unicode.IsLetter(r) || unicode.IsDigit(r)) || len(scope) == 5 {
				break
			}
			scope = append(scope, r)
		}
		for j := 0; j+2 <= len(scope); j++ {
			g := scope[j : j+2]
			f.hashed = append(f.hashed, hashRunes(nsHash(nsNeg), g))
			if f.explain {
				f.names = append(f.names, "¬"+string(g))
			}
		}
		runes = scope[:0]
	}
	return runes
}
