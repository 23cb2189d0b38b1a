package main

import (
	"runtime/debug"

	"github.com/prometheus/common/version"
)

// buildVars are the variables of github.com/prometheus/common/version that
// releases set with -ldflags -X, and that --version, the start-up log and
// liveswitch_exporter_build_info show.
type buildVars struct {
	Version, Revision, BuildDate string
}

// fillVersion gives binaries built with a plain `go build` or `go install`
// (no -ldflags) a version, revision and build date, from what the go command
// records in the binary: otherwise they would show empty ones, and nobody
// could tell which code a running exporter is. It is called before the
// flags are parsed, because --version is rendered then.
func fillVersion() {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	v := buildVars{Version: version.Version, Revision: version.Revision, BuildDate: version.BuildDate}
	v.fill(bi)
	version.Version, version.Revision, version.BuildDate = v.Version, v.Revision, v.BuildDate
}

// fill sets the variables the linker flags left empty from bi: the main
// module's version unless it is "(devel)" (go install module@version, or a
// go build in a VCS checkout, records a real or pseudo-version), the VCS
// revision with "-dirty" when the working tree had changes, and the commit
// time as the build date (reproducible, unlike the time of the build).
func (v *buildVars) fill(bi *debug.BuildInfo) {
	var revision, commitTime string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			revision = s.Value
		case "vcs.time":
			commitTime = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if revision != "" && modified {
		revision += "-dirty"
	}
	if mv := bi.Main.Version; v.Version == "" && mv != "(devel)" {
		v.Version = mv
	}
	if v.Revision == "" {
		v.Revision = revision
	}
	if v.BuildDate == "" {
		v.BuildDate = commitTime
	}
}
