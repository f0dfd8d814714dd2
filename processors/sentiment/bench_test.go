package sentiment

import "testing"

var benchTexts = []string{
	"I was charged twice for the same course and nobody answers my emails",
	"Hi, how do I change the email on my account?",
	"Thanks, that fixed it!",
	"the video player is still not working after your update, this is ridiculous",
}

func BenchmarkDefaultScorer(b *testing.B) {
	s := scorer(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.Score(benchTexts[i%len(benchTexts)])
		i++
	}
}
