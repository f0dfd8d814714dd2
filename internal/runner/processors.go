package runner

import (
	"fmt"
	"maps"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/pipeline"
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

// Topics are the configured topics with the processors' outputs mapped
// to theirs (Record.Output -> topic), as the pipeline reads them.
func Topics(cfg config.Config) pipeline.Topics {
	t := cfg.Topics
	t.Outputs = maps.Clone(t.Outputs)
	if t.Outputs == nil {
		t.Outputs = map[string]string{}
	}
	if cfg.Segments.Enabled && t.Segments != "" {
		t.Outputs[segment.Output] = t.Segments
	}
	return t
}
