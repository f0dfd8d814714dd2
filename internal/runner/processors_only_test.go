package runner

import (
	"slices"
	"testing"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/processors"
)

func TestOnlyKeepsTheNamedProcessorsInOrder(t *testing.T) {
	procs, err := Processors(config.Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	kept, err := only(procs, []string{"sentiment", "funnel"})
	if err != nil {
		t.Fatal(err)
	}
	names := func(ps []processors.Processor) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name())
		}
		return out
	}
	if got := names(kept); !slices.Equal(got, []string{"funnel", "sentiment"}) {
		t.Fatalf("kept %v, want funnel then sentiment (registration order)", got)
	}
	if _, err := only(procs, []string{"funnel", "segmnet"}); err == nil {
		t.Fatal("a misspelt processor name was accepted")
	}
}
