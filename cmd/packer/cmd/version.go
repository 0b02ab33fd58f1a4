package cmd

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/module"

	"github.com/packer-build/packer/layers"
)

// Commit and CommitDate are set by the Makefile (-ldflags -X) where the
// build has no VCS stamp (GOFLAGS=-buildvcs=false).
var Commit, CommitDate string

// about is what packer knows of its own build.
type about struct {
	Version, Commit, Date string
	Modified              bool
}

// aboutBuild reads the version (-ldflags -X, else the module version) and
// the commit and its date: from the VCS stamp go build writes in a
// checkout, else from a pseudo-version (go install module@commit).
func aboutBuild(bi *debug.BuildInfo, ok bool) about {
	a := about{Version: Version, Commit: Commit, Date: CommitDate}
	if !ok {
		if a.Version == "" {
			a.Version = "dev"
		}
		return a
	}
	for _, s := range bi.Settings {
		if Commit != "" {
			break // from the Makefile's -ldflags
		}
		switch s.Key {
		case "vcs.revision":
			a.Commit = s.Value
		case "vcs.time":
			a.Date = s.Value
		case "vcs.modified":
			a.Modified = s.Value == "true"
		}
	}
	v := bi.Main.Version
	if a.Commit == "" && module.IsPseudoVersion(v) {
		if rev, err := module.PseudoVersionRev(v); err == nil {
			a.Commit = rev
		}
		if t, err := module.PseudoVersionTime(v); err == nil {
			a.Date = t.UTC().Format(time.RFC3339)
		}
	}
	if a.Version == "" {
		a.Version = v
	}
	if a.Version == "" || a.Version == "(devel)" {
		a.Version = "dev"
	}
	return a
}

func (a about) String() string {
	s := "packer " + a.Version
	var parts []string
	if a.Commit != "" {
		c := a.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if a.Modified {
			c += " (modified)"
		}
		parts = append(parts, "commit "+c)
	}
	if a.Date != "" {
		parts = append(parts, a.Date)
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print packer's version, the commit it was built from and its date",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			bi, ok := debug.ReadBuildInfo()
			fmt.Fprintln(c.OutOrStdout(), aboutBuild(bi, ok))
			fmt.Fprintf(c.OutOrStdout(), "%s %s/%s, layers %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, layers.Compressor())
			return nil
		},
	}
}
