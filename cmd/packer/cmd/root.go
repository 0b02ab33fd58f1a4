// Package cmd is packer's command line: one file per subcommand. Results
// (digests, plan JSON) go to stdout; logs go to stderr.
package cmd

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version is set at link time (-X); otherwise it comes from build info.
var Version = ""

// version is packer's version: part of step cache keys, SBOMs and
// provenance (see aboutBuild).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	a := aboutBuild(bi, ok)
	if Version == "" && a.Commit != "" && len(a.Commit) >= 12 {
		// A build from a checkout: each commit is a version of its own.
		return a.Version + "+" + a.Commit[:12]
	}
	return a.Version
}

type rootOptions struct {
	quiet bool
}

func (o *rootOptions) logWriter(c *cobra.Command) io.Writer {
	if o.quiet {
		return io.Discard
	}
	return c.ErrOrStderr()
}

// New returns packer's root command.
func New() *cobra.Command {
	ro := &rootOptions{}
	root := &cobra.Command{
		Use:   "packer",
		Short: "Build small, non-root, reproducible OCI images without a Docker daemon or a Dockerfile",
		Long: `packer detects your app (Go, Node.js, Python, or a static site), plans an image,
runs your toolchain in a private staging copy, writes deterministic layers on a
base image and publishes the result to a registry, an OCI layout or a
docker-archive tarball.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().BoolVarP(&ro.quiet, "quiet", "q", false, "print only results (digest, plan) on stdout; no logs")
	root.AddCommand(newBuild(ro), newPlan(ro), newDockerfile(ro), newSBOM(ro), newVerify(ro), newLogin(ro), newCache(), newVersion())
	// Command line mistakes are usage errors (exit 2) that name the help.
	root.SetFlagErrorFunc(flagError)
	root.SuggestionsMinimumDistance = 2
	root.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	root.Args = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return &UsageError{fmt.Errorf("%s (see packer --help)", msg)}
	}
	var wrap func(*cobra.Command)
	wrap = func(c *cobra.Command) {
		if c.Args != nil && c != root {
			c.Args = usageArgs(c.Args)
		}
		for _, sub := range c.Commands() {
			wrap(sub)
		}
	}
	wrap(root)
	return root
}
