package cli

import (
	"bufio"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// labelledText is one line of a labelled file. Neutral says the text was
// labelled neutral (not merely not negative); Skip says the line carries a
// label that the chosen reading leaves out (ambiguous GoEmotions, neutral
// tweets when training negative vs positive).
type labelledText struct {
	Text     string
	Negative bool
	Neutral  bool
	Line     int
}

// badLine is a line that could not be read, reported and skipped.
type badLine struct {
	Line   int
	Reason string
}

// readOptions say how neutral texts of the three-way sets are read.
type readOptions struct {
	// KeepNeutral: neutral tweets and neutral GoEmotions comments count as
	// not negative; otherwise they are left out (SemEval's and GoEmotions'
	// negative-vs-positive reading, the stronger mix for training).
	KeepNeutral bool
}

// GoEmotions ids (labels.txt order) read as negative and as positive;
// the others (confusion, curiosity, desire, realization, surprise) are
// ambiguous and left out, neutral is neutral.
var (
	goNegative = map[int]bool{2: true, 3: true, 9: true, 10: true, 11: true, 12: true, 14: true, 16: true, 19: true, 24: true, 25: true}
	goPositive = map[int]bool{0: true, 1: true, 4: true, 5: true, 13: true, 15: true, 17: true, 18: true, 20: true, 21: true, 23: true}
	goIDs      = regexp.MustCompile(`^\d+(,\d+)*$`)
	uEscape    = regexp.MustCompile(`\\u[0-9a-fA-F]{4}`)
)

// errNoLabels: a file has no line in any known form.
var errNoLabels = errors.New("no labelled line in a known form")

// readLabelledFile reads the labelled forms of ../shared/data and
// test/testdata, deciding per line:
//
//	negative|neutral|positive <TAB> text         support chats (test/testdata)
//	text <TAB> 0|1                               sentiment-dev (0 = negative)
//	0|1 <TAB> text                               SST-2 (0 = negative; header skipped)
//	text <TAB> ids <TAB> comment-id              GoEmotions
//	id <TAB> positive|negative|neutral <TAB> text  SemEval 2017 task 4A
//	text,neg,...  (CSV with a header)            ../shared/data/sentiment-train/zh
//
// Lines starting with # are comments. A line in no known form is
// returned in bad with its number, never fatal.
func readLabelledFile(path string, o readOptions) (set []labelledText, bad []badLine, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	if strings.HasSuffix(path, ".csv") {
		set, bad, err = readLabelledCSV(f)
	} else {
		set, bad, err = readTSV(f, o)
	}
	if err == nil && len(set) == 0 {
		err = fmt.Errorf("%s: %w (%d lines skipped)", path, errNoLabels, len(bad))
	}
	return set, bad, err
}

func readTSV(r io.Reader, o readOptions) (set []labelledText, bad []badLine, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(text) == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Split(text, "\t")
		for len(fields) > 2 && strings.TrimSpace(fields[len(fields)-1]) == "" {
			fields = fields[:len(fields)-1] // SemEval 2016 test: a trailing tab
		}
		lt, keep, reason := parseTSVLine(fields, o)
		if reason != "" {
			bad = append(bad, badLine{line, reason})
			continue
		}
		if keep && strings.TrimSpace(lt.Text) != "" {
			lt.Line = line
			set = append(set, lt)
		}
	}
	return set, bad, sc.Err()
}

// parseTSVLine reads one line's fields; keep false leaves out a line with
// a label the reading ignores; reason is set for a malformed line.
func parseTSVLine(fields []string, o readOptions) (lt labelledText, keep bool, reason string) {
	if len(fields) < 2 {
		return lt, false, "no tab"
	}
	head, tail := fields[0], strings.TrimSpace(fields[len(fields)-1])
	switch {
	case head == "negative" || head == "neutral" || head == "positive":
		return labelledText{Text: strings.Join(fields[1:], "\t"), Negative: head == "negative", Neutral: head == "neutral"}, true, ""
	case len(fields) >= 3 && isSemEvalLabel(fields[1]):
		label := fields[1]
		t := unescapeTweet(strings.Join(fields[2:], " "))
		if label == "neutral" && !o.KeepNeutral {
			return lt, false, ""
		}
		return labelledText{Text: t, Negative: label == "negative", Neutral: label == "neutral"}, true, ""
	case len(fields) == 3 && goIDs.MatchString(fields[1]):
		neg, pos, neutral := false, false, false
		for _, s := range strings.Split(fields[1], ",") {
			id, _ := strconv.Atoi(s)
			neg = neg || goNegative[id]
			pos = pos || goPositive[id]
			neutral = neutral || id == 27
		}
		switch {
		case neg && !pos:
			return labelledText{Text: fields[0], Negative: true}, true, ""
		case pos && !neg:
			return labelledText{Text: fields[0]}, true, ""
		case neutral && !neg && !pos && o.KeepNeutral:
			return labelledText{Text: fields[0], Neutral: true}, true, ""
		}
		return lt, false, ""
	case len(fields) == 2 && (head == "label" || head == "0" || head == "1") && !(tail == "0" || tail == "1"):
		if head == "label" {
			return lt, false, "" // SST-2 header
		}
		return labelledText{Text: fields[1], Negative: head == "0"}, true, ""
	case tail == "0" || tail == "1":
		return labelledText{Text: strings.Join(fields[:len(fields)-1], "\t"), Negative: tail == "0"}, true, ""
	}
	return lt, false, "neither a label first (negative/neutral/positive, 0/1), a 0/1 last, GoEmotions nor SemEval form"
}

func isSemEvalLabel(s string) bool { return s == "positive" || s == "negative" || s == "neutral" }

// unescapeTweet undoes the \uXXXX escapes of the 2013 SemEval files.
func unescapeTweet(s string) string {
	if !strings.Contains(s, `\u`) {
		return s
	}
	return uEscape.ReplaceAllStringFunc(s, func(e string) string {
		r, err := strconv.ParseUint(e[2:], 16, 32)
		if err != nil {
			return e
		}
		return string(rune(r))
	})
}

func readLabelledCSV(r io.Reader) (set []labelledText, bad []badLine, err error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	cr.LazyQuotes = true // a stray quote in a review is text, not a broken file
	head, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("csv header: %w", err)
	}
	textCol, negCol := -1, -1
	for i, h := range head {
		switch strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")) {
		case "text":
			textCol = i
		case "neg":
			negCol = i
		}
	}
	if textCol < 0 || negCol < 0 {
		return nil, nil, fmt.Errorf("csv header %q: want text and neg columns", strings.Join(head, ","))
	}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			bad = append(bad, badLine{pe.StartLine, pe.Err.Error()})
			continue
		}
		if err != nil {
			return set, bad, err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) <= max(textCol, negCol) {
			bad = append(bad, badLine{line, "too few columns"})
			continue
		}
		neg := strings.TrimSpace(rec[negCol])
		if neg != "0" && neg != "1" {
			bad = append(bad, badLine{line, "neg is neither 0 nor 1"})
			continue
		}
		if strings.TrimSpace(rec[textCol]) == "" {
			continue
		}
		set = append(set, labelledText{Text: rec[textCol], Negative: neg == "1", Line: line})
	}
	return set, bad, nil
}
