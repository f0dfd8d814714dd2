package cli

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"
)

func newReplayCmd(g *globals) *cobra.Command {
	var (
		kind    string
		mapping []string
		quiet   bool
	)
	cmd := &cobra.Command{
		Use:   "replay <file>",
		Short: "Produce events from a JSON-lines or CSV file to the input topics",
		Long: `replay reads events and produces them to the clickstream or chat topic, keyed by user_id.
JSON lines: one event per line; a line with "sender" or "conversation_id" goes to the chat
topic, others to the clickstream topic, unless --kind says which.
CSV (a .csv file): the header names the columns; --map renames them to schema fields
(field=column), --kind says which stream. event_time may be milliseconds or RFC 3339;
amount is a number; columns named properties.X become properties.
The processor validates what arrives: bad rows land in the dead-letter topic.`,
		Example: `  cxstream replay events.jsonl
  cxstream replay orders.csv --kind clickstream --map user_id=customer,event_id=id,type=action,event_time=ts`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kind != "" && kind != "clickstream" && kind != "chat" {
				return fmt.Errorf("--kind must be clickstream or chat, got %q", kind)
			}
			rows, total, err := openEvents(args[0], kind, mapping)
			if err != nil {
				return err
			}
			cl, cfg, err := g.kafkaClient(cmd, kgo.ProducerLinger(5*time.Millisecond))
			if err != nil {
				return err
			}
			defer cl.Close()
			var bar *progressbar.ProgressBar
			if !quiet {
				bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionSetDescription("replay"),
					progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"), progressbar.OptionThrottle(100*time.Millisecond))
			}
			var sent, failed atomic.Int64
			var firstErr atomic.Value
			n := 0
			for ev := range rows {
				if ev.err != nil {
					return fmt.Errorf("%s: %w", args[0], ev.err)
				}
				topic := cfg.Topics.Clickstream
				if ev.chat {
					topic = cfg.Topics.Chat
				}
				cl.Produce(cmd.Context(), &kgo.Record{Topic: topic, Key: []byte(ev.user), Value: ev.value}, func(_ *kgo.Record, err error) {
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err)
						return
					}
					sent.Add(1)
					if bar != nil {
						_ = bar.Add(1)
					}
				})
				n++
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := cl.Flush(ctx); err != nil {
				return err
			}
			if bar != nil {
				_ = bar.Finish()
				fmt.Fprintln(cmd.ErrOrStderr())
			}
			fmt.Fprintf(cmd.OutOrStdout(), "replayed %d events (%d failed) from %s\n", sent.Load(), failed.Load(), args[0])
			if e, ok := firstErr.Load().(error); ok {
				return fmt.Errorf("kafka at %v: %w", cfg.Kafka.Brokers, e)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&kind, "kind", "", "clickstream or chat (required for CSV; JSON lines are sorted by their fields)")
	cmd.Flags().StringSliceVar(&mapping, "map", nil, "CSV column mapping, field=column,...")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

type replayEvent struct {
	user  string
	value []byte
	chat  bool
	err   error
}

// openEvents streams the file's events; total is the number of data lines
// (for the progress bar).
func openEvents(path, kind string, mapping []string) (<-chan replayEvent, int64, error) {
	total, err := countLines(path)
	if err != nil {
		return nil, 0, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	out := make(chan replayEvent, 256)
	isCSV := strings.HasSuffix(strings.ToLower(path), ".csv")
	if isCSV {
		if kind == "" {
			f.Close()
			return nil, 0, fmt.Errorf("a CSV file needs --kind clickstream or --kind chat")
		}
		total--
	}
	go func() {
		defer close(out)
		defer f.Close()
		if isCSV {
			readCSV(f, kind, mapping, out)
			return
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for line := 1; sc.Scan(); line++ {
			raw := strings.TrimSpace(sc.Text())
			if raw == "" {
				continue
			}
			var probe map[string]any
			if err := json.Unmarshal([]byte(raw), &probe); err != nil {
				out <- replayEvent{err: fmt.Errorf("line %d: %w", line, err)}
				return
			}
			_, hasSender := probe["sender"]
			_, hasConv := probe["conversation_id"]
			chat := kind == "chat" || (kind == "" && (hasSender || hasConv))
			user, _ := probe["user_id"].(string)
			out <- replayEvent{user: user, value: []byte(raw), chat: chat}
		}
		if err := sc.Err(); err != nil {
			out <- replayEvent{err: err}
		}
	}()
	return out, total, nil
}

func readCSV(r io.Reader, kind string, mapping []string, out chan<- replayEvent) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	first, err := cr.Read()
	if err != nil {
		out <- replayEvent{err: fmt.Errorf("csv header: %w", err)}
		return
	}
	header := slices.Clone(first) // ReuseRecord overwrites it on the next Read

	field := map[string]string{} // column -> field
	for _, h := range header {
		field[h] = h
	}
	for _, m := range mapping {
		f, col, ok := strings.Cut(m, "=")
		if !ok {
			out <- replayEvent{err: fmt.Errorf("--map %q: want field=column", m)}
			return
		}
		field[col] = f
	}
	for line := 2; ; line++ {
		rec, err := cr.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			out <- replayEvent{err: fmt.Errorf("line %d: %w", line, err)}
			return
		}
		ev := map[string]any{}
		props := map[string]any{}
		for i, v := range rec {
			name := field[header[i]]
			switch {
			case v == "":
			case name == "event_time":
				ev[name] = parseTime(v)
			case name == "amount":
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					ev[name] = f
				} else {
					ev[name] = v // the processor dead-letters it, with the reason
				}
			case strings.HasPrefix(name, "properties."):
				props[strings.TrimPrefix(name, "properties.")] = v
			default:
				ev[name] = v
			}
		}
		if len(props) > 0 {
			ev["properties"] = props
		}
		value, _ := json.Marshal(ev)
		user, _ := ev["user_id"].(string)
		out <- replayEvent{user: user, value: value, chat: kind == "chat"}
	}
}

// parseTime accepts milliseconds or RFC 3339; anything else is passed on
// as text for the processor to reject with a reason.
func parseTime(v string) any {
	if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
		return ms
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t.UnixMilli()
	}
	return v
}

func countLines(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) != "" {
			n++
		}
	}
	return n, sc.Err()
}
