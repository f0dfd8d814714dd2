package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := NewRoot(&out, &errOut)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestChineseExampleIsConfidentlyNegative(t *testing.T) {
	out, errOut, err := runCLI(t, "这个课程完全不符合我的期望,我很失望。\n", "sentiment")
	if err != nil {
		t.Fatal(err, errOut)
	}
	f := strings.Split(strings.TrimSpace(out), "\t")
	if len(f) != 4 || f[1] != "negative" || f[2] < "0.900" {
		t.Fatalf("got %q, want negative with confidence >= 0.9", out)
	}
}

// A team trains its own model from labelled files, evaluates it, and
// scores with it; malformed lines are reported with their number, not fatal.
func TestTrainEvaluateAndUseOwnModel(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "chats.tsv")
	body, err := os.ReadFile("../../test/testdata/support_chats_zh.tsv")
	if err != nil {
		t.Fatal(err)
	}
	body = append(body, []byte("this line has no tab\nmaybe\t又坏了\n")...)
	if err := os.WriteFile(data, body, 0o600); err != nil {
		t.Fatal(err)
	}
	model := filepath.Join(dir, "zh.bin")
	out, errOut, err := runCLI(t, "", "sentiment", "train", "--lang", "zh", "--bits", "14", "--val-share", "0.3", data+"@2", "-o", model)
	if err != nil {
		t.Fatal(err, errOut)
	}
	if !strings.Contains(out, "wrote "+model) || !regexp.MustCompile(`chats.tsv:\d+: skipped`).MatchString(errOut) {
		t.Fatalf("train output %q, stderr %q", out, errOut)
	}
	card, err := os.ReadFile(filepath.Join(dir, "zh.card.md"))
	if err != nil || !strings.Contains(string(card), "| chats |") || !strings.Contains(string(card), "ROC AUC") {
		t.Fatalf("model card: %v\n%s", err, card)
	}

	out, errOut, err = runCLI(t, "", "sentiment-eval", "--lang", "zh", "--model", "zh="+model, data, "../../test/testdata/support_chats_zh_holdout.tsv")
	if err != nil {
		t.Fatal(err, errOut)
	}
	if !strings.Contains(errOut, "chats.tsv:") || !strings.Contains(errOut, "skipped") {
		t.Errorf("malformed lines not reported: %q", errOut)
	}
	row := regexp.MustCompile(`(?m)^support_chats_zh_holdout.tsv\s+zh\s+150\s+70\s+0\.\d+`)
	if !row.MatchString(out) || !strings.Contains(out, "calibration") {
		t.Fatalf("eval output:\n%s", out)
	}

	out, _, err = runCLI(t, "退款到现在还没到账,太差劲了\n", "sentiment", "--explain", "--model", "zh="+model)
	if err != nil || !strings.Contains(out, "\tzh\t") {
		t.Fatalf("scoring with own model: %v %q", err, out)
	}
}

func TestMalformedLabelledLinesAreSkippedWithTheirNumber(t *testing.T) {
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "reviews.csv")
	csvBody := "text,neg,orig_label\n" +
		"\"很好,下次还来\",0,1\n" +
		"太差了,1,0\n" +
		"no label column\n" +
		"\"服务\"一般\",maybe,0\n" +
		"退款一直不到账,1,0\n"
	if err := os.WriteFile(csvPath, []byte(csvBody), 0o600); err != nil {
		t.Fatal(err)
	}
	set, bad, err := readLabelledFile(csvPath, readOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 3 || len(bad) != 2 || bad[0].Line != 4 || bad[1].Line != 5 {
		t.Fatalf("set %+v, bad %+v", set, bad)
	}
	tsvPath := filepath.Join(dir, "chats.tsv")
	if err := os.WriteFile(tsvPath, []byte("# comment\nnegative\t扣了两次钱\nangry\ttext\tmore\nno tab here\npositive\t谢谢\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	set, bad, err = readLabelledFile(tsvPath, readOptions{})
	if err != nil || len(set) != 2 || len(bad) != 2 || bad[0].Line != 3 || bad[1].Line != 4 {
		t.Fatalf("set %+v, bad %+v, err %v", set, bad, err)
	}
	out, errOut, err := runCLI(t, "", "sentiment-eval", "--calibration=false", csvPath, tsvPath)
	if err != nil || !strings.Contains(errOut, "reviews.csv:4: skipped") || !strings.Contains(errOut, "chats.tsv:3: skipped") || !strings.Contains(out, "reviews.csv") {
		t.Fatalf("err %v\nstdout %s\nstderr %s", err, out, errOut)
	}
}
