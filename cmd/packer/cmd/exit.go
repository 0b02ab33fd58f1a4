package cmd

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/packer-build/packer/config"
	"github.com/packer-build/packer/registry"
)

// Exit codes (README's table): a build that failed 1, the command line 2,
// a registry (unreachable, refused credentials, stalled) 3, a signature
// or attestation that does not verify 4. Interrupts exit 130 (SIGINT) and
// 143 (SIGTERM), in main.
const (
	ExitBuild    = 1
	ExitUsage    = 2
	ExitRegistry = 3
	ExitVerify   = 4
)

// UsageError is a command line packer cannot take: an unknown flag or
// command, a missing or extra argument, a flag value of the wrong form.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// VerifyError is a signature or attestation that does not verify.
type VerifyError struct{ Err error }

func (e *VerifyError) Error() string { return e.Err.Error() }
func (e *VerifyError) Unwrap() error { return e.Err }

// ExitCode is the process's exit code for err.
func ExitCode(err error) int {
	var u *UsageError
	var v *VerifyError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return ExitUsage
	case errors.As(err, &v):
		return ExitVerify
	case registry.IsRegistryError(err):
		return ExitRegistry
	}
	return ExitBuild
}

// buildxFlags are flags docker buildx users reach for, and what packer
// has instead.
var buildxFlags = map[string]string{
	"file":          "packer needs no Dockerfile: it detects the app (packer plan shows how); --plan FILE builds an edited plan, packer.toml sets the rest",
	"f":             "packer needs no Dockerfile: it detects the app (packer plan shows how); --plan FILE builds an edited plan, packer.toml sets the rest",
	"build-context": "packer builds one directory: the build context is DIR",
	"progress":      "packer prints plain progress lines on stderr; -q prints only the results",
	"ssh":           "pass credentials to steps with --secret id=NAME,src=FILE",
}

// flagError turns cobra's flag errors into usage errors that name the
// nearest flag (or what packer offers for a buildx flag) and the help.
func flagError(c *cobra.Command, err error) error {
	msg := err.Error()
	var name string
	if n, ok := strings.CutPrefix(msg, "unknown flag: --"); ok {
		name = n
	} else if n, ok := strings.CutPrefix(msg, "unknown shorthand flag: "); ok {
		// unknown shorthand flag: 'f' in -f
		if i := strings.Index(n, "'"); i >= 0 && len(n) > i+1 {
			name = string(n[i+1])
		}
	}
	help := fmt.Sprintf("see %s --help", c.CommandPath())
	if name != "" {
		if alt, ok := buildxFlags[name]; ok {
			return &UsageError{fmt.Errorf("%s: %s (%s)", msg, alt, help)}
		}
		if near := nearestFlag(c.Flags(), name); near != "" {
			return &UsageError{fmt.Errorf("%s: did you mean --%s? (%s)", msg, near, help)}
		}
	}
	return &UsageError{fmt.Errorf("%s (%s)", msg, help)}
}

// nearestFlag is the command's flag closest to name (edit distance at
// most 2, or sharing a 4-letter prefix), or "".
func nearestFlag(fs *pflag.FlagSet, name string) string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		d := config.Levenshtein(name, f.Name)
		if d <= 2 || (len(name) >= 4 && strings.HasPrefix(f.Name, name[:4])) {
			cs = append(cs, cand{f.Name, d})
		}
	})
	sort.Slice(cs, func(i, j int) bool { return cs[i].d < cs[j].d || cs[i].d == cs[j].d && cs[i].name < cs[j].name })
	if len(cs) == 0 {
		return ""
	}
	return cs[0].name
}

// usageArgs wraps a cobra argument check so its error is a usage error.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return &UsageError{fmt.Errorf("%v (see %s --help)", err, c.CommandPath())}
		}
		return nil
	}
}
