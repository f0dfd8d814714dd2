package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestSentimentCommandWritesTabSeparatedScores(t *testing.T) {
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetIn(strings.NewReader("I was charged twice and I want my money back\nok\nthanks, that fixed it!\n"))
	root.SetArgs([]string{"sentiment"})
	if err := root.Execute(); err != nil {
		t.Fatal(err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 lines, got %q", out.String())
	}
	for i, label := range []string{"negative", "neutral", "positive"} {
		f := strings.Split(lines[i], "\t")
		if len(f) != 4 || f[1] != label {
			t.Errorf("line %d: %q, want label %s", i, lines[i], label)
		}
	}
}

func TestBadConfigGivesOneClearLine(t *testing.T) {
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetArgs([]string{"run", "--redis", "localhost"})
	err := root.Execute()
	if err == nil || !strings.Contains(err.Error(), `"localhost" has no port`) {
		t.Fatalf("got %v", err)
	}
}
