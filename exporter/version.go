package exporter

import "runtime/debug"

// Set at link time by make package (tools/mkdeb), with -ldflags
// "-X github.com/icptrack/icptrack/exporter.version=…": the version comes
// from git describe, which the go command does not run, and the commit
// from git too, because the go command stamps no vcs.* settings in a
// git worktree (its .git is a file) or under -buildvcs=false.
var (
	version     string // such as 1.2.0 or 0.0.0+9c327e1
	vcsRevision string // the full commit hash
	vcsModified string // "true" when the tree had uncommitted changes
)

// Version is icptrack's version: the one make package stamped, else the
// module's (go install …@v1.2.0), else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// Commit is the commit icptrack was built from, and whether the tree had
// uncommitted changes: the go command's vcs.revision and vcs.modified
// when it stamped them, else what make package stamped; "" when neither.
func Commit() (revision string, modified bool) {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				revision = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if revision == "" {
		revision, modified = vcsRevision, vcsModified == "true"
	}
	return revision, modified
}
