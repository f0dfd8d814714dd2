package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/collect"
	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/erasure"
	"github.com/cxstream/cxstream/internal/kafka"
	"github.com/cxstream/cxstream/internal/pipeline"
	"github.com/cxstream/cxstream/internal/privacy"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/state"
	"github.com/cxstream/cxstream/internal/userview"
	"github.com/cxstream/cxstream/processors/churn"
	"github.com/cxstream/cxstream/processors/funnel"
)

// userStore is what the per-user commands need: the store, the queue, and
// the id as it is stored (the pseudonym when pseudonymisation is on).
type userStore struct {
	cfg   config.Config
	log   *zap.Logger
	store *state.Store
	queue *alertsink.Queue
	// links are the collector's anonymous id -> user id links.
	links *collect.Links
	// pseudonyms turn an id as the operator gives it into the stored one.
	pseudonyms *privacy.Pseudonymizer
	close      func()
}

func (g *globals) userStore(cmd *cobra.Command) (*userStore, error) {
	cfg, log, err := g.load(cmd, nil)
	if err != nil {
		return nil, err
	}
	pseudonyms, err := privacy.FromSecret(cfg.Privacy.PseudonymKey)
	if err != nil {
		return nil, err
	}
	rdb, err := runner.NewRedis(cfg.Redis)
	if err != nil {
		return nil, err
	}
	return &userStore{
		cfg:        cfg,
		log:        log,
		pseudonyms: pseudonyms,
		store:      state.New(rdb, state.Options{Prefix: cfg.Redis.KeyPrefix}),
		queue:      alertsink.New(rdb, alertsink.Options{Prefix: cfg.Redis.KeyPrefix, SLA: alertsink.SLA(cfg.Queue.SLA)}),
		links:      collect.NewLinks(rdb, cfg.Redis.KeyPrefix, 0, pseudonyms),
		close:      func() { _ = rdb.Close() },
	}, nil
}

// forUser opens the user store and turns id into the stored id.
func (g *globals) forUser(cmd *cobra.Command, id string) (*userStore, string, error) {
	us, err := g.userStore(cmd)
	if err != nil {
		return nil, "", err
	}
	return us, us.pseudonyms.ID(id), nil
}

// viewBuilder assembles the user-view builder for a loaded config.
func (u *userStore) viewBuilder() (*userview.Builder, error) {
	fp, err := funnel.New(u.cfg.Funnels, u.cfg.Processing.AllowedLateness)
	if err != nil {
		return nil, err
	}
	cp, err := churn.New(u.cfg.Churn)
	if err != nil {
		return nil, err
	}
	return &userview.Builder{Store: u.store, Queue: u.queue, Funnel: fp, Churn: cp, ChurnCfg: u.cfg.Churn, Currency: u.cfg.API.Currency}, nil
}

func newUserCmd(g *globals) *cobra.Command {
	var asJSON, raw bool
	cmd := &cobra.Command{
		Use:   "user <id>",
		Short: "Show what we know of a customer: funnels, purchases, churn risk, sentiment, support queue",
		Long: `user prints a summary an agent can read: funnel stage and since when, purchases and spend,
churn score with its reasons, rolling sentiment per conversation, recent negative messages
and the user's support-queue conversations with their position and claimant.
--json prints the same as user-view.v1 (schemas/user-view.v1.json); --raw the storage documents.
Give the original id: with pseudonymisation on, it is turned into the stored pseudonym.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			us, id, err := g.forUser(cmd, args[0])
			if err != nil {
				return err
			}
			defer us.close()
			if raw {
				return printRaw(cmd, us, id, args[0])
			}
			b, err := us.viewBuilder()
			if err != nil {
				return err
			}
			v, err := b.Build(cmd.Context(), id)
			if errors.Is(err, userview.ErrNoUser) {
				return fmt.Errorf("no state for user %q", args[0])
			}
			if err != nil {
				return fmt.Errorf("redis at %v: %w", us.cfg.Redis.Addrs, err)
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			return userview.WriteText(cmd.OutOrStdout(), v, args[0])
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print user-view.v1 JSON (schemas/user-view.v1.json)")
	cmd.Flags().BoolVar(&raw, "raw", false, "print the storage documents as they are in Redis (for debugging)")
	return cmd
}

func printRaw(cmd *cobra.Command, us *userStore, id, shown string) error {
	docs, err := us.store.Load(cmd.Context(), []string{id})
	if err != nil {
		return fmt.Errorf("redis at %v: %w", us.cfg.Redis.Addrs, err)
	}
	d := docs[id]
	if d.Click.Version == 0 && d.Chat.Version == 0 {
		return fmt.Errorf("no state for user %q", shown)
	}
	view := map[string]any{"user_id": id}
	for side, doc := range map[state.Side]state.Doc{state.Click: d.Click, state.Chat: d.Chat} {
		if len(doc.Data) > 0 {
			data, err := pipeline.DocJSON(doc.Data) // a binary document is shown in the JSON layout
			if err != nil {
				return fmt.Errorf("%s document: %w", side, err)
			}
			view[string(side)] = json.RawMessage(data)
			view[string(side)+"_version"] = doc.Version
		}
	}
	enc := json.NewEncoder(cmd.OutOrStdout())
	enc.SetIndent("", "  ")
	return enc.Encode(view)
}

func newForgetCmd(g *globals) *cobra.Command {
	var noTombstone bool
	cmd := &cobra.Command{
		Use:   "forget <id>",
		Short: "Erase a user: state, timers and queue entries in Redis, then a tombstone on the alert topic",
		Long: `forget deletes every state document, timer, support-queue entry and identity link (from or
to the id, kept by cxstream collect) of the user, then
produces a tombstone (key = the user id as stored, empty value, header cx-erasure: true) to
the alert topic, so downstream subscribers (and compaction) can drop what they hold.
Give the original id: with pseudonymisation on it is turned into the stored pseudonym.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			us, err := g.userStore(cmd)
			if err != nil {
				return err
			}
			defer us.close()
			cfg := us.cfg
			e := &erasure.Eraser{Store: us.store, Queue: us.queue, Links: us.links, Pseudonyms: us.pseudonyms}
			if !noTombstone {
				// Check the alert topics before anything is deleted, so a
				// missing topic does not leave an erasure half done.
				cl, err := newKafkaClient(cfg, us.log)
				if err != nil {
					return err
				}
				defer cl.Close()
				if err := requireTopics(cmd.Context(), cl, cfg, cfg.Topics.Alerts, cfg.Topics.AlertsV1); err != nil {
					return err
				}
				e.Publisher, e.Topics = kafka.NewPublisher(cl), []string{cfg.Topics.Alerts, cfg.Topics.AlertsV1}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			res, err := e.Erase(ctx, args[0])
			if err != nil {
				return fmt.Errorf("redis at %v or kafka: %w", cfg.Redis.Addrs, err)
			}
			out := cmd.OutOrStdout()
			if res.Nothing() {
				// Nothing stored (never seen, already erased, or expired
				// after redis.state_ttl); subscribers may still hold alerts.
				fmt.Fprintf(out, "no state, timers, queue entries or identity links stored for user %q (never seen, already erased, or expired)\n", args[0])
			} else {
				fmt.Fprintf(out, "deleted %d keys and timers, %d queue entries and %d identity link keys of user %q", res.Keys, res.QueueEntries, res.IdentityLinks, args[0])
				if res.AnonymousIDs > 0 {
					fmt.Fprintf(out, " and of the %d anonymous ids linked to them", res.AnonymousIDs)
				}
				fmt.Fprintln(out)
			}
			if res.Tombstone {
				fmt.Fprintf(out, "tombstone published to %s, so subscribers drop what they hold of the user\n", strings.Join(slices.DeleteFunc(slices.Clone(e.Topics), func(t string) bool { return t == "" }), " and "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noTombstone, "no-tombstone", false, "erase Redis only, publish nothing to Kafka")
	return cmd
}
