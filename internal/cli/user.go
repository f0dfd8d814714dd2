package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/runner"
	"github.com/cxstream/cxstream/internal/state"
)

func newUserCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "user <id>",
		Short: "Show a user's state from Redis: funnel, sentiment, churn features",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, where, closeStore, err := g.store(cmd)
			if err != nil {
				return err
			}
			defer closeStore()
			docs, err := st.Load(cmd.Context(), args)
			if err != nil {
				return fmt.Errorf("redis at %v: %w", where, err)
			}
			d := docs[args[0]]
			if d.Click.Version == 0 && d.Chat.Version == 0 {
				return fmt.Errorf("no state for user %q", args[0])
			}
			view := map[string]any{"user_id": args[0]}
			for side, doc := range map[state.Side]state.Doc{state.Click: d.Click, state.Chat: d.Chat} {
				if len(doc.Data) > 0 {
					view[string(side)] = json.RawMessage(doc.Data)
					view[string(side)+"_version"] = doc.Version
				}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(view)
		},
	}
}

func newForgetCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "forget <id>",
		Short: "Erase all state of a user from Redis",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, where, closeStore, err := g.store(cmd)
			if err != nil {
				return err
			}
			defer closeStore()
			n, err := st.Forget(cmd.Context(), args[0])
			if err != nil {
				return fmt.Errorf("redis at %v: %w", where, err)
			}
			q, err := queueRemove(cmd, g, args[0])
			if err != nil {
				return fmt.Errorf("redis at %v: %w", where, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deleted %d keys and timers and %d queue entries of user %q\n", n, q, args[0])
			return nil
		},
	}
}

// store opens the state store the config names, for the commands that
// read or erase users.
func (g *globals) store(cmd *cobra.Command) (*state.Store, []string, func(), error) {
	cfg, _, err := g.load(cmd, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	rdb := runner.NewRedis(cfg.Redis)
	return state.New(rdb, state.Options{Prefix: cfg.Redis.KeyPrefix}), cfg.Redis.Addrs, func() { _ = rdb.Close() }, nil
}

func queueRemove(cmd *cobra.Command, g *globals, user string) (int, error) {
	cfg, _, err := g.load(cmd, nil)
	if err != nil {
		return 0, err
	}
	rdb := runner.NewRedis(cfg.Redis)
	defer rdb.Close()
	return alertsink.NewQueue(rdb, cfg.Redis.KeyPrefix).Remove(cmd.Context(), user)
}
