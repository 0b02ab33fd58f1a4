package layers

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// DefaultExcludes are left out of every build context, on top of
// .dockerignore: version control data, local env files that usually hold
// secrets, and packer's own output directory.
var DefaultExcludes = []string{".git", ".env", ".env.*", ".packer"}

// Ignore decides which context paths are left out, with Docker's
// .dockerignore semantics (moby/patternmatcher), including `!` re-includes.
type Ignore struct {
	pm       *patternmatcher.PatternMatcher
	patterns []string
}

// LoadIgnore reads dir/.dockerignore (if any) and combines it with the
// default excludes. Patterns apply in this order, later ones winning as in
// Docker: DefaultExcludes, provider (a provider's own excludes, such as
// node_modules), .dockerignore, user (packer.toml include/exclude). So a
// `!.env.example` line in .dockerignore re-includes a default exclude.
func LoadIgnore(dir string, provider, user []string) (*Ignore, error) {
	patterns := append([]string{}, DefaultExcludes...)
	patterns = append(patterns, provider...)
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	switch {
	case err == nil:
		userPatterns, rerr := ignorefile.ReadAll(f)
		f.Close()
		if rerr != nil {
			return nil, fmt.Errorf("reading .dockerignore: %w; fix the pattern it names", rerr)
		}
		patterns = append(patterns, userPatterns...)
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	return NewIgnore(append(patterns, user...))
}

// NewIgnore builds an Ignore from patterns in .dockerignore syntax.
func NewIgnore(patterns []string) (*Ignore, error) {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("invalid ignore pattern: %w", err)
	}
	return &Ignore{pm: pm, patterns: patterns}, nil
}

// Patterns returns the patterns in effect.
func (ig *Ignore) Patterns() []string { return ig.patterns }

// Excluded reports whether the slash-separated relative path is excluded,
// and for a directory whether the walk may skip it entirely (it may not when
// a `!` pattern could re-include something inside it).
func (ig *Ignore) Excluded(rel string, isDir bool) (excluded, skipDir bool, err error) {
	if ig == nil {
		return false, false, nil
	}
	m, err := ig.pm.MatchesOrParentMatches(filepath.FromSlash(rel))
	if err != nil {
		return false, false, fmt.Errorf("matching %q against .dockerignore: %w", rel, err)
	}
	if !m || !isDir {
		return m, false, nil
	}
	if !ig.pm.Exclusions() {
		return true, true, nil
	}
	dirSlash := rel + "/"
	for _, p := range ig.pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(filepath.ToSlash(p.String())+"/", dirSlash) {
			return true, false, nil
		}
	}
	return true, true, nil
}
