package schemas

import (
	"os"
	"testing"
)

func BenchmarkDecodeClick(b *testing.B) {
	v := newValidator(b)
	raw, _ := os.ReadFile("testdata/valid/clickstream.v1.product_view.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.DecodeClick(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeChat(b *testing.B) {
	v := newValidator(b)
	raw, _ := os.ReadFile("testdata/valid/chat.v1.customer.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.DecodeChat(raw); err != nil {
			b.Fatal(err)
		}
	}
}
