package sentiment

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the CPU time this process has used: on a shared machine the
// wall-clock ns/op includes waiting for a core, CPU time per op does not.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

var benchTexts = map[Language][]string{
	English: {
		"I was charged twice for the same course and nobody answers my emails",
		"Hi, how do I change the email on my account?",
		"Thanks, that fixed it!",
		"the video player is still not working after your update, this is ridiculous",
	},
	Chinese: {
		"这个课程完全不符合我的期望,我很失望。",
		"怎么下载课件?",
		"退款到现在还没到账,太差劲了",
		"我已经付款三天了,课程还是打不开,客服也没人回复,请尽快处理",
	},
}

func benchScore(b *testing.B, lang Language) {
	s := scorer(b)
	texts := benchTexts[lang]
	b.ReportAllocs()
	i := 0
	start := cpuTime(b)
	for b.Loop() {
		s.Score(texts[i%len(texts)])
		i++
	}
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

// Per message, one goroutine; reasons are computed for negative messages.
func BenchmarkScoreEnglish(b *testing.B) { benchScore(b, English) }
func BenchmarkScoreChinese(b *testing.B) { benchScore(b, Chinese) }

// BenchmarkLoadModels decodes both embedded models (what NewDefaultScorer
// does once per process) and reports their size.
func BenchmarkLoadModels(b *testing.B) {
	size := 0
	start := cpuTime(b)
	for b.Loop() {
		size = 0
		for _, lang := range Languages {
			data, err := embeddedModels.ReadFile("models/" + string(lang) + ".bin")
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ReadModel(data); err != nil {
				b.Fatal(err)
			}
			size += len(data)
		}
	}
	b.ReportMetric(float64(size)/(1<<20), "MiB")
	b.ReportMetric(float64(cpuTime(b)-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkLexiconScorer(b *testing.B) {
	s, err := NewLexiconScorer()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Score(benchTexts[English][i%4])
		i++
	}
}
