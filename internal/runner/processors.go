package runner

import (
	"fmt"
	"slices"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/processors"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
	"github.com/cxstream/cxstream/processors/segment"
	"github.com/cxstream/cxstream/processors/sentiment"
)

// Processors builds the registered processors from the configuration, in
// the order the pipeline applies them to an event. Adding a processor is
// one line here (and its package and configuration block). The order
// matters where one reads another's Facts after the same event: churn
// scores after the funnel has taken the click.
func Processors(cfg config.Config, scorer sentiment.Scorer) ([]processors.Processor, error) {
	fp, err := funnel.New(cfg.Funnels, cfg.Processing.AllowedLateness, funnel.WithLimits(cfg.Breakdown))
	if err != nil {
		return nil, err
	}
	if scorer == nil {
		if scorer, err = sentiment.NewScorer(cfg.Sentiment.Models); err != nil {
			return nil, fmt.Errorf("load sentiment model: %w", err)
		}
	}
	sp, err := sentiment.NewProcessor(cfg.Sentiment, scorer)
	if err != nil {
		return nil, err
	}
	cp, err := churn.New(cfg.Churn)
	if err != nil {
		return nil, err
	}
	procs := []processors.Processor{
		funnel.NewKeyed(fp, cfg.Events.Vocabulary()),
		churn.NewKeyed(cp),
		sentiment.NewKeyed(sp, cfg.Events.Purchase.DefaultCurrency),
	}
	if cfg.Segments.Enabled {
		sg, err := segment.New(cfg.Segments)
		if err != nil {
			return nil, err
		}
		procs = append(procs, segment.NewKeyed(sg)) // after funnel and churn: it reads their Facts of the same click
	}
	return procs, nil
}

// only keeps the processors named in names, in their order; a name that
// matches none is an error.
func only(procs []processors.Processor, names []string) ([]processors.Processor, error) {
	for _, n := range names {
		if !slices.ContainsFunc(procs, func(p processors.Processor) bool { return p.Name() == n }) {
			return nil, fmt.Errorf("no processor named %q is configured", n)
		}
	}
	var kept []processors.Processor
	for _, p := range procs {
		if slices.Contains(names, p.Name()) {
			kept = append(kept, p)
		}
	}
	return kept, nil
}
