package api_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/internal/userview/viewtest"
	"github.com/cxstream/cxstream/schemas"
)

// chromium finds a headless-capable Chromium or Chrome.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Unavailable(t, "no chromium on PATH (apt-get install chromium)")
	return ""
}

// screenshotDir is $CX_SCREENSHOT_DIR, or the test's artifact directory
// (kept with go test -artifacts -outputdir DIR).
func screenshotDir(t *testing.T) string {
	if d := os.Getenv("CX_SCREENSHOT_DIR"); d != "" {
		testenv.Must(t, os.MkdirAll(d, 0o755), "screenshot dir")
		return d
	}
	return t.ArtifactDir()
}

// TestConsoleInABrowser drives headless Chromium through the console as
// an agent would: sign in, claim with the keyboard, read the customer,
// resolve, watch a dead client's claim come back after its lease, and see
// a new alert arrive on the live stream. Screenshots of each step go to
// the artifact directory.
func TestConsoleInABrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("drives a browser")
	}
	bin := chromium(t)
	e := start(t)
	now := time.Now()
	viewtest.Seed(t, e.Redis.Client, e.Queue, viewtest.Customer{UserID: "u-42", ConversationID: "conv-9", Messages: []string{
		"hello", "I was charged twice and nobody answers, this is ridiculous",
	}}, now)
	cn := negative("u-cn", "会话-7", schemas.PriorityNormal, now.Add(-time.Hour).UnixMilli())
	cn.Excerpt = "我被重复扣款两次，客服一直不回复！卡号 [card]"
	cn.Reasons = []schemas.AlertReason{{Code: schemas.CodeVeryNegativeMessage, Params: map[string]any{"sentiment": -0.85, "threshold": -0.8}, Text: "very negative message (-0.85)"}}
	e.push(cn)

	dir := screenshotDir(t)
	t.Logf("screenshots in %s", dir)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1500, 1000),
		chromedp.Flag("lang", "en-US"))...)
	defer cancelAlloc()
	browser, cancel := chromedp.NewContext(alloc)
	defer cancel()
	// The first action starts the browser; it must not run under a
	// timeout (that would stop the browser), later ones do.
	if err := chromedp.Do(browser, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(browser, 120*time.Second)
	defer cancelTimeout()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		testenv.Must(t, err, "screenshot "+name)
		testenv.Must(t, os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644), "save screenshot")
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// text reads an element's text without waiting ("" when absent).
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(function(){const e=document.querySelector(`+strconv.Quote(sel)+`);return e?e.innerText:""})()`))
		testenv.Must(t, err, "read "+sel)
		return s
	}
	waitText := func(what, sel, want string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			s := text(sel)
			if strings.Contains(s, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %q never showed %q (shows %q; status %q)", what, sel, want, s, text("#queue-status"))
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	// Keys act when no text field has the focus.
	blur := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[bool](`(document.activeElement && document.activeElement.blur(), true)`)(ctx, tg)
		return err
	})
	key := chromedp.KeyEvent

	// Sign in as the admin (every panel) by keyboard.
	run("open", chromedp.Navigate(e.URL+"/"), chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), tokens["admin"].token+"\r"))
	waitText("sign-in", "#whoami", "Signed in as admin")
	waitText("queue", "#queue tbody", "conv-9")
	waitText("chinese excerpt", "#queue tbody", "我被重复扣款两次")
	waitText("funnel report", "#funnels", "purchase")
	shot("1-queue")

	// n claims the most urgent conversation (conv-9, HIGH or above); the
	// customer panel fills in beside it.
	run("claim key", blur, key("n"))
	waitText("claimed", "#work-conversation", "conv-9")
	waitText("customer", "#customer", "u-42")
	waitText("customer purchases", "#customer", "1, spend 129.50 USD")
	waitText("claimant shown", "#queue tr[data-conversation='conv-9'] td.claimant", "admin")
	shot("2-claimed")
	if it, err := e.Queue.Get(context.Background(), "conv-9"); err != nil || it.Claim == nil || it.Claim.Agent != "admin" {
		t.Fatalf("the console's claim is not in Redis: %+v %v", it, err)
	}

	// r resolves it (outcome from the select, default "resolved").
	run("resolve key", blur, key("r"))
	waitText("resolved", "#queue-status", "Resolved conv-9")
	if _, err := e.Queue.Get(context.Background(), "conv-9"); err == nil {
		t.Fatal("conv-9 is still open after resolving in the console")
	}
	shot("3-resolved")

	// Another agent's tool claims the Chinese conversation and dies: the
	// console shows it claimed, then back in the queue after the lease.
	if status, _ := e.do("crashy", "POST", "/v1/queue/claim", map[string]any{"conversation_id": "会话-7", "lease_seconds": 30}, nil); status != 200 {
		t.Fatalf("crashy's claim: %d", status)
	}
	waitText("claimed by crashy", "#queue tr[data-conversation='会话-7'] td.claimant", "crashy")
	shot("4-claimed-by-crashy")
	e.Clock.Advance(31 * time.Second)
	waitText("lease expired", "#queue-counts", "1 waiting, 0 claimed")
	if s := text("#queue tr[data-conversation='会话-7'] td.claimant"); s != "-" {
		t.Fatalf("after the lease the console shows claimant %q", s)
	}
	shot("5-lease-expired")

	// A new alert on the topic appears in the live stream.
	alert := negative("u-new", "conv-new", schemas.PriorityUrgent, now.UnixMilli())
	alert.Excerpt = "where is my refund?? 退款在哪里？"
	deadline := time.Now().Add(20 * time.Second)
	for {
		e.produceAlert(alert)
		time.Sleep(500 * time.Millisecond)
		s := text("#alerts")
		if strings.Contains(s, "conv-new") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the new alert never showed in the live stream: %q", s)
		}
	}
	waitText("alert excerpt", "#alerts", "退款在哪里")
	shot("6-alert")

	// The released conversation can be claimed from its row's button and
	// released by keyboard.
	run("claim button", chromedp.Click(chromedp.CSS("#queue tr[data-conversation='会话-7'] button.claim")))
	waitText("claimed cn", "#work-conversation", "会话-7")
	run("release key", blur, key("l"))
	waitText("released", "#queue-status", "Released 会话-7")
	if it, err := e.Queue.Get(context.Background(), "会话-7"); err != nil || it.Claim != nil {
		t.Fatalf("after release: %+v %v", it, err)
	}
}
