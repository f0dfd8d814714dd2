package config

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/agnivade/levenshtein"
)

// FileError is a configuration file that cannot be read or parsed. It is
// never recoverable by flags: the command must stop.
type FileError struct {
	Path string
	Err  error
}

func (e *FileError) Error() string {
	if errors.Is(e.Err, fs.ErrNotExist) {
		return fmt.Sprintf("config %s: no such file", e.Path)
	}
	if errors.Is(e.Err, fs.ErrPermission) {
		return fmt.Sprintf("config %s: permission denied", e.Path)
	}
	return fmt.Sprintf("config %s: %v", e.Path, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// EnvError is one CXSTREAM_* variable that cannot be applied.
type EnvError struct {
	Name string // CXSTREAM_REDIS_CLUSTER
	Key  string // redis.cluster; empty for an unknown variable
	Err  error
}

func (e *EnvError) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("config: %s: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("config: %s (%s): %v", e.Name, e.Key, e.Err)
}

func (e *EnvError) Unwrap() error { return e.Err }

// Problem is one key whose value cannot work.
type Problem struct {
	Key string // e.g. funnels.purchase.steps.cart.events
	Msg string
}

// ValidationError lists every problem of a configuration, one a line. A
// flag may still fix one, so the CLI validates again after applying flags.
type ValidationError struct {
	Problems []Problem
}

func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = fmt.Sprintf("config: %s: %s", p.Key, p.Msg)
	}
	return strings.Join(lines, "\n")
}

// problems collects validation problems.
type problems []Problem

func (ps *problems) add(key, format string, args ...any) {
	*ps = append(*ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...)})
}

// addErr adds err (when not nil) under key.
func (ps *problems) addErr(key string, err error) {
	if err != nil {
		ps.add(key, "%v", err)
	}
}

// addKeyed adds an error of the form "config: key: message" (as the
// sections' own Validate methods return them) under its key.
func (ps *problems) addKeyed(err error) {
	if err == nil {
		return
	}
	rest := strings.TrimPrefix(err.Error(), "config: ")
	key, msg, ok := strings.Cut(rest, ": ")
	if !ok {
		key, msg = "config", rest
	}
	ps.add(key, "%s", msg)
}

func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	return &ValidationError{Problems: ps}
}

// suggest returns ` (did you mean "x"?)` for the closest of valid to got,
// or "" when nothing is close enough to be a likely typo.
func suggest(got string, valid []string) string {
	best, bestDist := "", -1
	for _, v := range valid {
		d := levenshtein.ComputeDistance(strings.ToLower(got), strings.ToLower(v))
		if bestDist < 0 || d < bestDist {
			best, bestDist = v, d
		}
	}
	if bestDist < 0 || bestDist > max(2, len(got)/3) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
