package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/cxstream/cxstream/internal/alertsink"
	"github.com/cxstream/cxstream/internal/redact"
)

func newQueueCmd(g *globals) *cobra.Command {
	var (
		limit  int
		pop    bool
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "queue",
		Short: "The support queue: list it, or claim, extend, resolve, release and remove conversations",
		Long: `queue lists the support queue, most urgent first: waiting conversations and those an agent
holds. An agent claims a conversation with a lease, then extends, resolves (with an outcome) or
releases it; a lease that runs out puts the conversation back in its original place. Every
operation is atomic in Redis, so two agents never hold the same conversation.`,
		Example: `  cxstream queue                                      # the 20 most urgent conversations
  cxstream queue claim --agent ana --lease 5m --json  # take the most urgent one
  cxstream queue extend c-123 --agent ana --lease 10m
  cxstream queue resolve c-123 --agent ana --outcome refunded
  cxstream queue release c-123 --agent ana             # give it back
  cxstream queue remove c-123                          # take it out whoever holds it (spam, duplicate)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			us, err := g.userStore(cmd)
			if err != nil {
				return err
			}
			defer us.close()
			q := us.queue
			out := cmd.OutOrStdout()
			if pop {
				// Deprecated: claim and resolve at once, as --pop used to.
				it, err := q.Claim(cmd.Context(), alertsink.ClaimOptions{Agent: "cli-pop", Lease: time.Minute})
				if err != nil {
					return us.redisErr(err)
				}
				if _, err := q.Resolve(cmd.Context(), it.ConversationID, "cli-pop", "popped"); err != nil {
					return us.redisErr(err)
				}
				if asJSON {
					return json.NewEncoder(out).Encode(it.Alert)
				}
				fmt.Fprintln(out, alertsink.OneLine(it.Alert))
				return nil
			}
			st, err := q.Stats(cmd.Context())
			if err != nil {
				return us.redisErr(err)
			}
			items, err := q.List(cmd.Context(), limit)
			if err != nil {
				return us.redisErr(err)
			}
			if asJSON {
				if items == nil {
					items = []alertsink.Item{}
				}
				return json.NewEncoder(out).Encode(items)
			}
			fmt.Fprintf(out, "%d waiting, %d claimed", st.Waiting, st.Claimed)
			if st.OldestWaiting > 0 {
				fmt.Fprintf(out, ", oldest waiting %s", roundDuration(st.OldestWaiting))
			}
			fmt.Fprintln(out)
			printItems(out, items, time.Now())
			return nil
		},
	}
	cmd.Flags().IntVarP(&limit, "limit", "n", 20, "how many conversations to show")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the items as JSON")
	cmd.Flags().BoolVar(&pop, "pop", false, "take the most urgent conversation and close it at once")
	_ = cmd.Flags().MarkDeprecated("pop", "use 'queue claim', then 'queue resolve' when the work is done")
	cmd.AddCommand(newQueueClaimCmd(g), newQueueExtendCmd(g), newQueueResolveCmd(g), newQueueReleaseCmd(g), newQueueRemoveCmd(g))
	return cmd
}

func printItems(out io.Writer, items []alertsink.Item, now time.Time) {
	if len(items) == 0 {
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CONVERSATION\tUSER\tSEGMENT\tPRIORITY\tWAITING\tSLA\tCLAIMED BY\tLEASE LEFT\tREASONS\tEXCERPT")
	for _, it := range items {
		sla := slaText(it, now)
		agent, lease := "-", "-"
		if it.Claim != nil {
			agent = it.Claim.Agent
			lease = roundDuration(max(0, it.Claim.ExpiresAt.Sub(now)))
		}
		prio := string(it.Priority)
		if it.Alert.Priority != "" && it.Alert.Priority != it.Priority {
			prio += " (was " + string(it.Alert.Priority) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", it.ConversationID, it.UserID, cmp.Or(it.Segment, "-"), prio,
			roundDuration(time.Duration(it.WaitingSeconds*float64(time.Second))), sla, agent, lease,
			redact.Clip(strings.Join(it.Alert.ReasonTexts(), "; "), 60), redact.Clip(oneLine(it.Alert.Excerpt), 50))
	}
	_ = tw.Flush()
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func slaText(it alertsink.Item, now time.Time) string {
	switch {
	case it.SLABreached:
		return "BREACHED"
	case it.SLAMet:
		return "met"
	case it.SLADeadline == nil:
		return "-"
	case it.SLADeadline.After(now):
		return "in " + roundDuration(it.SLADeadline.Sub(now))
	}
	return "due"
}

// roundDuration keeps two units: 1h5m, 4m30s, 12s, 250ms.
func roundDuration(d time.Duration) string {
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	d = d.Round(time.Second)
	h, m, s := int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60
	switch {
	case h >= 24:
		return fmt.Sprintf("%dd%dh", h/24, h%24)
	case h > 0:
		return fmt.Sprintf("%dh%dm", h, m)
	case m > 0 && s > 0:
		return fmt.Sprintf("%dm%ds", m, s)
	case m > 0:
		return fmt.Sprintf("%dm", m)
	}
	return fmt.Sprintf("%ds", s)
}

// redisErr keeps queue refusals as they are and names Redis otherwise.
func (u *userStore) redisErr(err error) error {
	for _, known := range []error{alertsink.ErrEmpty, alertsink.ErrNotFound, alertsink.ErrNotClaimed, alertsink.ErrClaimed, alertsink.ErrInvalid} {
		if errors.Is(err, known) {
			return err
		}
	}
	return fmt.Errorf("redis at %v: %w", u.cfg.Redis.Addrs, err)
}

// itemFlags are the flags of the commands that act on a claim.
type itemFlags struct {
	agent  string
	lease  time.Duration
	asJSON bool
}

func (f *itemFlags) register(cmd *cobra.Command, lease bool) {
	cmd.Flags().StringVar(&f.agent, "agent", "", "the agent's id (required)")
	_ = cmd.MarkFlagRequired("agent")
	if lease {
		cmd.Flags().DurationVar(&f.lease, "lease", 0, "how long the claim holds without an extension (default queue.default_lease)")
	}
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the item as JSON")
}

func (f *itemFlags) print(cmd *cobra.Command, verb string, it alertsink.Item) error {
	out := cmd.OutOrStdout()
	if f.asJSON {
		return json.NewEncoder(out).Encode(it)
	}
	fmt.Fprintf(out, "%s %s (user %s)\n", verb, it.ConversationID, it.UserID)
	printItems(out, []alertsink.Item{it}, time.Now())
	return nil
}

// itemCmd completes c, a subcommand acting on one queue item: it opens the
// store, runs act, and prints the item act returns with its verb.
func itemCmd(g *globals, c *cobra.Command, f *itemFlags, act func(ctx context.Context, us *userStore, args []string) (alertsink.Item, string, error)) *cobra.Command {
	c.RunE = func(cmd *cobra.Command, args []string) error {
		us, err := g.userStore(cmd)
		if err != nil {
			return err
		}
		defer us.close()
		it, verb, err := act(cmd.Context(), us, args)
		if err != nil {
			return us.redisErr(err)
		}
		return f.print(cmd, verb, it)
	}
	return c
}

// leaseOr is --lease, or def when it was not given.
func (f *itemFlags) leaseOr(def time.Duration) time.Duration {
	if f.lease == 0 {
		return def
	}
	return f.lease
}

func newQueueClaimCmd(g *globals) *cobra.Command {
	var (
		f            itemFlags
		conversation string
	)
	cmd := itemCmd(g, &cobra.Command{
		Use:   "claim",
		Short: "Claim the most urgent waiting conversation (or --conversation) with a lease",
		Args:  cobra.NoArgs,
	}, &f, func(ctx context.Context, us *userStore, _ []string) (alertsink.Item, string, error) {
		it, err := us.queue.Claim(ctx, alertsink.ClaimOptions{Agent: f.agent, Lease: f.leaseOr(us.cfg.Queue.DefaultLease), Conversation: conversation})
		return it, "claimed", err
	})
	f.register(cmd, true)
	cmd.Flags().StringVar(&conversation, "conversation", "", "claim this conversation instead of the most urgent")
	return cmd
}

func newQueueExtendCmd(g *globals) *cobra.Command {
	var f itemFlags
	cmd := itemCmd(g, &cobra.Command{
		Use:   "extend <conversation>",
		Short: "Renew your lease on a conversation (to --lease from now)",
		Args:  cobra.ExactArgs(1),
	}, &f, func(ctx context.Context, us *userStore, args []string) (alertsink.Item, string, error) {
		it, err := us.queue.Extend(ctx, args[0], f.agent, f.leaseOr(us.cfg.Queue.DefaultLease))
		return it, "extended", err
	})
	f.register(cmd, true)
	return cmd
}

func newQueueResolveCmd(g *globals) *cobra.Command {
	var (
		f       itemFlags
		outcome string
	)
	cmd := itemCmd(g, &cobra.Command{
		Use:   "resolve <conversation>",
		Short: "Close a conversation you hold, with an outcome",
		Args:  cobra.ExactArgs(1),
	}, &f, func(ctx context.Context, us *userStore, args []string) (alertsink.Item, string, error) {
		it, err := us.queue.Resolve(ctx, args[0], f.agent, outcome)
		return it, "resolved (" + outcome + ")", err
	})
	f.register(cmd, false)
	cmd.Flags().StringVar(&outcome, "outcome", "", "what was done, e.g. resolved, refunded, no_action (a-z, 0-9, _ and -)")
	_ = cmd.MarkFlagRequired("outcome")
	return cmd
}

func newQueueReleaseCmd(g *globals) *cobra.Command {
	var f itemFlags
	cmd := itemCmd(g, &cobra.Command{
		Use:   "release <conversation>",
		Short: "Give a conversation you hold back to the queue, in its original place",
		Args:  cobra.ExactArgs(1),
	}, &f, func(ctx context.Context, us *userStore, args []string) (alertsink.Item, string, error) {
		it, err := us.queue.Release(ctx, args[0], f.agent)
		return it, "released", err
	})
	f.register(cmd, false)
	return cmd
}

func newQueueRemoveCmd(g *globals) *cobra.Command {
	var f itemFlags
	cmd := itemCmd(g, &cobra.Command{
		Use:   "remove <conversation>",
		Short: "Take a conversation out of the queue whoever holds it (spam, duplicate)",
		Args:  cobra.ExactArgs(1),
	}, &f, func(ctx context.Context, us *userStore, args []string) (alertsink.Item, string, error) {
		it, err := us.queue.RemoveConversation(ctx, args[0])
		return it, "removed", err
	})
	cmd.Flags().BoolVar(&f.asJSON, "json", false, "print the item as JSON")
	return cmd
}
