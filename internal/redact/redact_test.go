package redact

import (
	"strings"
	"testing"
)

func TestText(t *testing.T) {
	cases := []struct {
		in, want string
		gone     []string
	}{
		{"my email is jane.doe+shop@example.co.uk, please reply", "my email is [email], please reply", []string{"jane.doe"}},
		{"charged on card 4111 1111 1111 1111 twice", "charged on card [card] twice", []string{"4111"}},
		{"card 4111-1111-1111-1112 is not Luhn valid", "card [number] is not Luhn valid", []string{"1112"}},
		{"call me at +44 20 7946 0958 today", "call me at [phone] today", []string{"7946"}},
		{"order 123456789 never arrived", "order [number] never arrived", []string{"123456789"}},
		{"refund to DE89 3704 0044 0532 0130 00 please", "refund to [iban] please", []string{"3704"}},
		{"reset link https://shop.example.com/reset?token=abc123 failed", "reset link [url] failed", []string{"token"}},
		{"see https://example.com/help/orders", "see https://example.com/help/orders", nil},
		{"我的邮箱是 wang.li@example.cn，电话 138 0013 8000，退款！", "我的邮箱是 [email]，电话 [phone]，退款！", []string{"wang.li", "0013"}},
		{"order #42 is late", "order #42 is late", nil},
	}
	for _, c := range cases {
		got := Text(c.in)
		if got != c.want {
			t.Errorf("Text(%q)\n got %q\nwant %q", c.in, got, c.want)
		}
		for _, g := range c.gone {
			if strings.Contains(got, g) {
				t.Errorf("%q still contains %q", got, g)
			}
		}
	}
}

func TestExcerptCutsOnRunes(t *testing.T) {
	got := Excerpt(strings.Repeat("退", 50), 10)
	if got != strings.Repeat("退", 9)+"…" {
		t.Fatalf("got %q", got)
	}
}
