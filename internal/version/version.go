// Package version tells which build of cxstream is running, from what Go
// recorded in the binary: shown by --version and exported as cx_build_info.
package version

import (
	"fmt"
	"runtime/debug"
)

// String is the module version and VCS revision the binary was built
// from, as Go records them.
func String() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := info.Main.Version
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		v += " " + rev
		if dirty {
			v += "-dirty"
		}
	}
	return fmt.Sprintf("%s (%s)", v, info.GoVersion)
}

// Parts returns the version, the VCS revision and the Go version
// separately, for the build-info metric's labels.
func Parts() (mod, revision, goVersion string) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown", "", ""
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" {
			revision = s.Value
		}
	}
	return info.Main.Version, revision, info.GoVersion
}
