package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cxstream/cxstream/internal/config"
	"github.com/cxstream/cxstream/internal/ingest"
	"github.com/cxstream/cxstream/schemas"
)

type replayOpts struct {
	kind, format, mappingFile string
	rename                    []string
	quiet, dryRun             bool
	// speed replays at this many times the events' own pace (0: as fast
	// as possible); rate caps records per second (0: no cap).
	speed, rate float64
}

func newReplayCmd(g *globals) *cobra.Command {
	var o replayOpts
	cmd := &cobra.Command{
		Use:   "replay <file>",
		Short: "Produce events from a JSON-lines, Segment export or CSV file to the input topics (--dry-run: check only)",
		Long: `replay reads a file of events, checks every record, and produces the good ones to the
clickstream or chat topic, keyed by user. Records that do not fit are skipped and counted by
reason (naming the field); the summary lists them with their first line numbers.

Files: JSON lines (one record a line; a file holding one JSON array also works), CSV (.csv,
with a header), either gzipped (.gz). Formats (--format, default the topic's
topics.input.<kind>.format, or mapping when --mapping is given):
  cxstream  clickstream.v1/v2 or chat.v1 messages; without --kind a line with "sender" or
            "conversation_id" is chat
  segment   Segment Spec calls (track, page, screen, identify), e.g. a Segment JSON export
  mapping   records read through a mapping file (--mapping, or the topic's): field paths or
            CSV columns, value maps, time formats (epoch_s, epoch_ms, rfc3339, Go layouts
            like "2006-01-02 15:04:05 MST"); without an event id it is a hash of the record
A CSV without --mapping takes its columns as field names; --map renames them
(field=column), event_time is milliseconds or RFC 3339.
Records are sent converted to cxstream's messages when the topic reads that format, or as
they are when the topic reads the file's own format.`,
		Example: `  cxstream replay events.jsonl
  cxstream replay segment-export.json.gz --format segment
  cxstream replay 2019-Oct.csv --mapping deployments/examples/ecommerce-2019.mapping.yaml --dry-run
  cxstream replay orders.csv --kind clickstream --map user_id=customer,event_id=id,type=action,event_time=ts`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if o.kind != "" && o.kind != string(ingest.Click) && o.kind != string(ingest.Chat) {
				return fmt.Errorf("--kind must be clickstream or chat, got %q", o.kind)
			}
			cfg, log, err := g.load(cmd, nil)
			if err != nil {
				return err
			}
			src, err := openReplay(args[0], o, cfg)
			if err != nil {
				return err
			}
			defer src.close()
			var cl *kgo.Client
			if !o.dryRun {
				if cl, err = newKafkaClient(cfg, log, kgo.ProducerLinger(5*time.Millisecond)); err != nil {
					return err
				}
				defer cl.Close()
				if err := requireTopics(cmd.Context(), cl, cfg, cfg.Topics.Clickstream, cfg.Topics.Chat); err != nil {
					return err
				}
			}
			return replay(cmd, args[0], src, cl, cfg, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.kind, "kind", "", "clickstream or chat (default: clickstream, or by the fields of cxstream JSON lines)")
	f.StringVar(&o.format, "format", "", "cxstream, segment or mapping (default: the topic's format; mapping with --mapping)")
	f.StringVar(&o.mappingFile, "mapping", "", "mapping YAML file (fields, values, constants, time_format, default_currency)")
	f.StringSliceVar(&o.rename, "map", nil, "CSV without --mapping: column renames, field=column,...")
	f.BoolVar(&o.dryRun, "dry-run", false, "check every record and report; produce nothing")
	f.Float64Var(&o.speed, "speed", 0, "replay at N times the events' own pace, by their event times (0: as fast as possible)")
	f.Float64Var(&o.rate, "rate", 0, "at most this many records per second (0: no cap)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress bar")
	return cmd
}

// replaySource yields a file's records, converted.
type replaySource struct {
	records <-chan replayRecord
	total   int64
	close   func()
}

// replayRecord is one record of the file: where it is, and either what to
// produce or why it is skipped.
type replayRecord struct {
	line  int
	kind  ingest.Kind
	user  string
	value []byte
	at    int64 // event time (ms), for --speed
	err   error
}

// decoders picks, per kind, the reader of the file's records and whether
// records go out as read or converted.
type decoders struct {
	byKind  map[ingest.Kind]*ingest.Decoder
	passRaw map[ingest.Kind]bool
	// auto: cxstream JSON lines whose kind is told by their fields.
	auto bool
}

// newDecoders builds the readers of the file's records: through
// headerMap (a CSV's own column names), --mapping, --format, or the
// topic's format.
func newDecoders(o replayOpts, cfg config.Config, headerMap *ingest.Mapping) (*decoders, error) {
	v, err := schemas.NewValidator(cfg.Processing.MaxMessageBytes)
	if err != nil {
		return nil, err
	}
	d := &decoders{byKind: map[ingest.Kind]*ingest.Decoder{}, passRaw: map[ingest.Kind]bool{}}
	kinds := []ingest.Kind{ingest.Click, ingest.Chat}
	switch {
	case o.kind != "":
		kinds = []ingest.Kind{ingest.Kind(o.kind)}
	case headerMap != nil || o.mappingFile != "" || o.format != "":
		kinds = []ingest.Kind{ingest.Click} // one kind per file: clickstream unless told
	}
	topicInput := map[ingest.Kind]ingest.Input{ingest.Click: cfg.Topics.Input.Clickstream, ingest.Chat: cfg.Topics.Input.Chat}
	for _, kind := range kinds {
		topic := topicInput[kind]
		if topic.Format == "" {
			topic.Format = ingest.FormatCxstream
		}
		in := topic
		switch {
		case headerMap != nil:
			in = ingest.Input{Format: ingest.FormatMapping, Mapping: headerMap}
		case o.mappingFile != "":
			in = ingest.Input{Format: ingest.FormatMapping, MappingFile: o.mappingFile}
		case o.format != "":
			in = ingest.Input{Format: ingest.Format(o.format), DefaultCurrency: topic.DefaultCurrency}
			if in.Format == ingest.FormatMapping {
				in.Mapping, in.MappingFile = topic.Mapping, topic.MappingFile
			}
		}
		if kind == ingest.Chat && in.Format == ingest.FormatSegment && o.kind == "" {
			continue // a Segment export is clickstream only
		}
		dec, err := ingest.NewDecoder(kind, in, v)
		if err != nil {
			if o.mappingFile != "" {
				return nil, fmt.Errorf("--mapping %s: %w", o.mappingFile, err)
			}
			return nil, err
		}
		d.byKind[kind] = dec
		switch {
		case topic.Format == ingest.FormatCxstream:
		case headerMap == nil && o.mappingFile == "" && in.Format == topic.Format:
			d.passRaw[kind] = true // the topic reads the file's own format
		default:
			return nil, fmt.Errorf("topics.input.%s reads format %s: replay can send it records in that format only (or set the topic's format to cxstream)", kind, topic.Format)
		}
	}
	d.auto = o.kind == "" && d.byKind[ingest.Click] != nil && d.byKind[ingest.Click].Format() == ingest.FormatCxstream &&
		d.byKind[ingest.Chat] != nil && d.byKind[ingest.Chat].Format() == ingest.FormatCxstream
	if !d.auto && o.kind == "" {
		delete(d.byKind, ingest.Chat) // one kind per file: clickstream unless told
	}
	if len(d.byKind) == 0 {
		return nil, errors.New("nothing can read this file: give --kind")
	}
	return d, nil
}

func (d *decoders) only() *ingest.Decoder {
	if dec := d.byKind[ingest.Click]; dec != nil {
		return dec
	}
	return d.byKind[ingest.Chat]
}

// convert reads one JSON record.
func (d *decoders) convert(line int, raw []byte) replayRecord {
	dec := d.only()
	if d.auto {
		if bytes.Contains(raw, []byte(`"sender"`)) || bytes.Contains(raw, []byte(`"conversation_id"`)) {
			dec = d.byKind[ingest.Chat]
		} else {
			dec = d.byKind[ingest.Click]
		}
	}
	rec := replayRecord{line: line, kind: dec.Kind()}
	canon, err := dec.Canonical(raw)
	if err == nil {
		rec.user, err = dec.Validate(canon)
	}
	rec.err = err
	rec.at = eventTimeOf(canon)
	if d.passRaw[dec.Kind()] {
		rec.value = raw
	} else {
		rec.value = canon
	}
	return rec
}

// openReplay opens the file and starts reading it.
func openReplay(path string, o replayOpts, cfg config.Config) (*replaySource, error) {
	lower := strings.ToLower(path)
	isCSV := strings.HasSuffix(strings.TrimSuffix(lower, ".gz"), ".csv")
	if len(o.rename) > 0 && (!isCSV || o.mappingFile != "") {
		return nil, errors.New("--map renames CSV columns when there is no --mapping")
	}
	if isCSV && o.kind == "" && o.mappingFile == "" && len(o.rename) > 0 {
		return nil, errors.New("a CSV file with --map needs --kind clickstream or --kind chat")
	}
	var d *decoders
	var err error
	headerNames := isCSV && o.mappingFile == "" && o.format != string(ingest.FormatMapping)
	if !headerNames { // otherwise built from the header once it is read
		if d, err = newDecoders(o, cfg, nil); err != nil {
			return nil, err
		}
	}
	total, err := countRecords(path)
	if err != nil {
		return nil, err
	}
	r, closeFile, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	out := make(chan replayRecord, 256)
	stop := make(chan struct{})
	done := make(chan struct{})
	send := func(rec replayRecord) bool {
		select {
		case out <- rec:
			return true
		case <-stop:
			return false
		}
	}
	if isCSV {
		total--
	}
	go func() {
		defer close(done)
		defer close(out)
		if isCSV {
			readReplayCSV(r, o, cfg, d, send)
			return
		}
		readReplayJSON(r, d, send)
	}()
	return &replaySource{records: out, total: max(total, 0), close: func() {
		close(stop)
		<-done
		closeFile()
	}}, nil
}

func openMaybeGzip(path string) (io.Reader, func(), error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	if !strings.HasSuffix(strings.ToLower(path), ".gz") {
		return f, func() { f.Close() }, nil
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return zr, func() { zr.Close(); f.Close() }, nil
}

// readReplayJSON reads JSON lines, or one JSON array of records.
func readReplayJSON(r io.Reader, d *decoders, send func(replayRecord) bool) {
	br := bufio.NewReaderSize(r, 1<<20)
	if first, err := peekNonSpace(br); err == nil && first == '[' {
		dec := json.NewDecoder(br)
		if _, err := dec.Token(); err != nil {
			send(replayRecord{line: 1, err: fmt.Errorf("invalid JSON array: %w", err)})
			return
		}
		for i := 1; dec.More(); i++ {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				send(replayRecord{line: i, err: &schemas.InvalidError{Schema: "file", Reason: schemas.ReasonInvalidJSON, Detail: "the array breaks off here"}})
				return
			}
			if !send(d.convert(i, raw)) {
				return
			}
		}
		return
	}
	sc := bufio.NewScanner(br)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	line := 0
	for sc.Scan() {
		line++
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		if !send(d.convert(line, bytes.Clone(raw))) {
			return
		}
	}
	if err := sc.Err(); err != nil {
		send(replayRecord{line: line + 1, err: &schemas.InvalidError{Schema: "file", Reason: schemas.ReasonTooLarge, Detail: err.Error()}})
	}
}

func peekNonSpace(br *bufio.Reader) (byte, error) {
	for i := 1; ; i++ {
		b, err := br.Peek(i)
		if err != nil {
			return 0, err
		}
		if c := b[i-1]; c != ' ' && c != '\n' && c != '\r' && c != '\t' {
			return c, nil
		}
	}
}

// readReplayCSV reads a CSV with a header through the mapping (--mapping
// or the topic's), or through the header's own names renamed by --map.
func readReplayCSV(r io.Reader, o replayOpts, cfg config.Config, d *decoders, send func(replayRecord) bool) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	cr.FieldsPerRecord = -1
	first, err := cr.Read()
	if err != nil {
		send(replayRecord{line: 1, err: fmt.Errorf("csv header: %w", err)})
		return
	}
	header := slices.Clone(first) // ReuseRecord overwrites it on the next Read
	if d == nil {
		if o.kind == "" {
			o.kind = string(ingest.Click)
		}
		m, err := headerMapping(ingest.Kind(o.kind), header, o.rename)
		if err == nil {
			d, err = newDecoders(o, cfg, m)
		}
		if err != nil {
			send(replayRecord{line: 1, err: err})
			return
		}
	}
	dec := d.only()
	for line := 2; ; line++ {
		row, err := cr.Read()
		if err == io.EOF {
			return
		}
		rec := replayRecord{line: line, kind: dec.Kind()}
		if err != nil {
			rec.err = &schemas.InvalidError{Schema: "csv", Reason: "invalid_csv", Detail: "malformed CSV row"}
			if !send(rec) {
				return
			}
			continue
		}
		cells := ingest.CSVRecord{}
		for i, v := range row {
			if i < len(header) {
				cells[header[i]] = v
			}
		}
		canon, err := dec.CanonicalRecord(cells, []byte(strings.Join(row, "\x1f")))
		if err == nil {
			rec.user, err = dec.Validate(canon)
		}
		rec.value, rec.err, rec.at = canon, err, eventTimeOf(canon)
		if !send(rec) {
			return
		}
	}
}

// headerMapping reads a CSV through its own column names (renamed by
// --map field=column); columns that are no field are left out, and
// columns named properties.X become properties.
func headerMapping(kind ingest.Kind, header, rename []string) (*ingest.Mapping, error) {
	field := map[string]string{} // column -> field
	for _, h := range header {
		field[h] = h
	}
	for _, m := range rename {
		f, col, ok := strings.Cut(m, "=")
		if !ok {
			return nil, fmt.Errorf("--map %q: want field=column", m)
		}
		if !slices.Contains(header, col) {
			return nil, fmt.Errorf("--map %q: the CSV has no column %q", m, col)
		}
		field[col] = f
	}
	m := &ingest.Mapping{Fields: map[string]string{}}
	for col, f := range field {
		if ingest.IsField(kind, f) {
			m.Fields[f] = col
		}
	}
	if err := m.Validate(kind); err != nil {
		return nil, fmt.Errorf("csv header: %w (name the columns after the fields, rename them with --map, or give --mapping)", err)
	}
	return m, nil
}

// replay sends (or, dry, only checks) the records and prints the summary.
func replay(cmd *cobra.Command, path string, src *replaySource, cl *kgo.Client, cfg config.Config, o replayOpts) error {
	var bar *progressbar.ProgressBar
	if !o.quiet {
		bar = progressbar.NewOptions64(src.total, progressbar.OptionSetWriter(cmd.ErrOrStderr()), progressbar.OptionSetDescription("replay"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("records"), progressbar.OptionThrottle(100*time.Millisecond))
	}
	var sent, failed atomic.Int64
	var firstErr atomic.Value
	sum := newSkipSummary()
	good := 0
	pace := newPacer(o.speed, o.rate)
	for rec := range src.records {
		if rec.err != nil {
			var ie *schemas.InvalidError
			if rec.kind == "" && !errors.As(rec.err, &ie) {
				return fmt.Errorf("%s: line %d: %w", path, rec.line, rec.err) // the file itself (header, mapping) cannot be read
			}
			sum.add(rec.line, rec.err)
			if bar != nil {
				_ = bar.Add(1)
			}
			continue
		}
		good++
		if cl == nil {
			if bar != nil {
				_ = bar.Add(1)
			}
			continue
		}
		if err := pace.wait(cmd.Context(), rec.at); err != nil {
			return err
		}
		topic := cfg.Topics.Clickstream
		if rec.kind == ingest.Chat {
			topic = cfg.Topics.Chat
		}
		cl.Produce(cmd.Context(), &kgo.Record{Topic: topic, Key: []byte(rec.user), Value: rec.value}, func(_ *kgo.Record, err error) {
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			} else {
				sent.Add(1)
			}
			if bar != nil {
				_ = bar.Add(1)
			}
		})
	}
	if cl != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := cl.Flush(ctx); err != nil {
			return err
		}
	}
	if bar != nil {
		_ = bar.Finish()
		fmt.Fprintln(cmd.ErrOrStderr())
	}
	out := cmd.OutOrStdout()
	if cl == nil {
		fmt.Fprintf(out, "dry run: %d records valid, %d skipped, nothing produced, from %s\n", good, sum.total, path)
	} else {
		fmt.Fprintf(out, "replayed %d events (%d failed) from %s\n", sent.Load(), failed.Load(), path)
		if sum.total > 0 {
			fmt.Fprintf(out, "skipped %d records\n", sum.total)
		}
	}
	sum.print(out)
	if e, ok := firstErr.Load().(error); ok {
		return fmt.Errorf("kafka at %v: %w", cfg.Kafka.Brokers, e)
	}
	return nil
}

// skipSummary counts skipped records by reason and detail, keeping the
// first few line numbers of each.
type skipSummary struct {
	total int
	by    map[string]*skipGroup
}

type skipGroup struct {
	n     int
	lines []int
}

const skipLinesShown = 5

func newSkipSummary() *skipSummary { return &skipSummary{by: map[string]*skipGroup{}} }

func (s *skipSummary) add(line int, err error) {
	s.total++
	key := err.Error()
	var ie *schemas.InvalidError
	if errors.As(err, &ie) {
		key = string(ie.Reason)
		if ie.Detail != "" {
			key += ": " + ie.Detail
		}
	}
	g := s.by[key]
	if g == nil {
		g = &skipGroup{}
		s.by[key] = g
	}
	g.n++
	if len(g.lines) < skipLinesShown {
		g.lines = append(g.lines, line)
	}
}

func (s *skipSummary) print(w io.Writer) {
	keys := make([]string, 0, len(s.by))
	for k := range s.by {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if s.by[keys[i]].n != s.by[keys[j]].n {
			return s.by[keys[i]].n > s.by[keys[j]].n
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		g := s.by[k]
		lines := fmt.Sprint(g.lines)
		if g.n > len(g.lines) {
			lines = strings.TrimSuffix(lines, "]") + " ...]"
		}
		fmt.Fprintf(w, "  %6d  %s  (lines %s)\n", g.n, k, strings.Trim(lines, "[]"))
	}
}

// countRecords counts non-empty lines (for the progress bar).
func countRecords(path string) (int64, error) {
	r, closeFile, err := openMaybeGzip(path)
	if err != nil {
		return 0, err
	}
	defer closeFile()
	var n int64
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			n++
		}
	}
	return n, nil // a line too long is reported when read
}

// eventTimeOf reads event_time from a canonical cxstream record (0 when
// it has none).
func eventTimeOf(canon []byte) int64 {
	var ev struct {
		EventTime int64 `json:"event_time"`
	}
	if json.Unmarshal(canon, &ev) != nil {
		return 0
	}
	return ev.EventTime
}

// pacer spaces records out: by their event times at speed times their own
// pace, and at most rate a second. A user can watch a day of history
// unfold in minutes (--speed 720) without flooding a small broker.
type pacer struct {
	speed, rate float64
	start       time.Time
	first       int64 // event time of the first paced record
	sent        int64
}

func newPacer(speed, rate float64) *pacer { return &pacer{speed: speed, rate: rate} }

// wait sleeps until the record with event time at may go out.
func (p *pacer) wait(ctx context.Context, at int64) error {
	if p.speed <= 0 && p.rate <= 0 {
		return nil
	}
	if p.start.IsZero() {
		p.start, p.first = time.Now(), at
	}
	var due time.Duration
	if p.speed > 0 && at > p.first {
		due = time.Duration(float64(at-p.first) / p.speed * float64(time.Millisecond))
	}
	if p.rate > 0 {
		due = max(due, time.Duration(float64(p.sent)/p.rate*float64(time.Second)))
	}
	p.sent++
	if d := time.Until(p.start.Add(due)); d > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
	return nil
}
