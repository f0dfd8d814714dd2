package report

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/testenv"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/schemas"
)

const t0 = int64(1_763_900_000_000)

// Defect 10: conversions still inside the allowed-lateness buffer were
// missing from time to convert ("733 conversions ... mean 0s median 0s").
func TestTimeToConvertCountsEveryConversionAtAnyMoment(t *testing.T) {
	r := testenv.StartRedis(t)
	st := state.New(r.Client, state.Options{})
	fp, err := funnel.New(funnel.DefaultDefinitions(), 5*time.Minute)
	testenv.Must(t, err, "funnel")
	minute := int64(time.Minute / time.Millisecond)
	// Three users convert in 3, 10 and 20 minutes, and then send nothing:
	// their conversions stay in the lateness buffer.
	took := []int64{3, 10, 20}
	var writes []state.Write
	for u, m := range took {
		doc := pipeline.ClickDoc{Funnel: funnel.State{}}
		steps := []string{schemas.ClickProductView, schemas.ClickAddToCart, schemas.ClickCheckoutStart, schemas.ClickPurchase}
		for i, typ := range steps {
			at := t0 + int64(i)*m*minute/3
			fp.Apply(doc.Funnel, schemas.ClickEvent{EventID: fmt.Sprint(u, typ), UserID: fmt.Sprint(u), Type: typ, EventTime: at})
		}
		data, _ := json.Marshal(doc)
		writes = append(writes, state.Write{User: fmt.Sprint("u", u), Side: state.Click, Data: data})
	}
	testenv.Must(t, st.Save(context.Background(), writes), "save")
	stats, err := Funnels(context.Background(), st, fp)
	testenv.Must(t, err, "report")
	s := stats[0]
	if s.Conversions != 3 || s.MeanConvert != 11*time.Minute || s.MedianConvert != 10*time.Minute {
		t.Fatalf("conversions %d, mean %s, median %s; want 3, 11m, 10m", s.Conversions, s.MeanConvert, s.MedianConvert)
	}
	var out bytes.Buffer
	Print(&out, stats)
	if !strings.Contains(out.String(), "time to convert over 3 conversions: mean 11m0s, median 10m0s") {
		t.Errorf("report:\n%s", out.String())
	}
}

func TestNoConversionsSaysNA(t *testing.T) {
	var out bytes.Buffer
	Print(&out, []FunnelStats{{Name: "f", Steps: []string{"a", "b"}, Reached: []int{1, 0}, InProgress: []int{1, 0}, Users: 1}})
	if !strings.Contains(out.String(), `funnel "f": 1 user, 0 conversions, 0 drop-offs; time to convert n/a`) {
		t.Errorf("report:\n%s", out.String())
	}
}
