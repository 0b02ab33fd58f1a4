package layers

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// DefaultExcludes are left out of every build context, at any depth, on
// top of .dockerignore: version control data, local env files, SSH keys
// and credential files, and packer's own output directory. A `!` pattern
// in .dockerignore brings one back (with a warning).
var DefaultExcludes = []string{
	".packer",
	"**/.git",
	"**/.env", "**/.env.*",
	"**/id_rsa*", "**/id_ed25519*", "**/id_ecdsa*",
	"**/.netrc", "**/.aws/credentials", "**/.docker/config.json", "**/.dockercfg",
}

// keyCandidates are left out only when their first bytes show a secret
// (see secretContent): *.pem and *.key holding a PRIVATE KEY block,
// .npmrc and .pypirc holding credentials. Certificates and plain
// registry settings stay.
var keyCandidates = []string{"**/*.pem", "**/*.key", "**/.npmrc", "**/.pypirc"}

// secretName says why a context path is a secret file by name ("" when it
// is not one). It mirrors DefaultExcludes, without .packer.
func secretName(rel string) string {
	base := path.Base(rel)
	switch {
	case base == ".git":
		return "version control data"
	case base == ".env" || strings.HasPrefix(base, ".env."):
		return "an env file, which usually holds secrets"
	case strings.HasPrefix(base, "id_rsa"), strings.HasPrefix(base, "id_ed25519"), strings.HasPrefix(base, "id_ecdsa"):
		return "an SSH key"
	case base == ".netrc", base == ".dockercfg":
		return "a credentials file"
	case rel == ".aws/credentials" || strings.HasSuffix(rel, "/.aws/credentials"),
		rel == ".docker/config.json" || strings.HasSuffix(rel, "/.docker/config.json"):
		return "a credentials file"
	}
	return ""
}

func keyCandidate(rel string) bool {
	base := path.Base(rel)
	return strings.HasSuffix(base, ".pem") || strings.HasSuffix(base, ".key") || base == ".npmrc" || base == ".pypirc"
}

var (
	privateKeyBlock = []byte("PRIVATE KEY-----")
	// npm: //host/:_authToken=…, _auth=…, _password=… (scoped or not).
	npmAuth = regexp.MustCompile(`(?m)^\s*(//[^\s=]*:)?(_authToken|_auth|_password)\s*=\s*\S`)
	// .pypirc: password = … (or a token, which is also a password there).
	pypiAuth = regexp.MustCompile(`(?m)^\s*password\s*[=:]\s*\S`)
)

// secretSniff is how much of a candidate file is read to decide.
const secretSniff = 4 << 10

// secretContent says why the file at abs (a key candidate) holds a secret,
// reading at most its first 4 KiB ("" when it does not).
func secretContent(rel, abs string) (string, error) {
	f, err := os.Open(abs)
	if err != nil {
		return "", err
	}
	defer f.Close()
	buf := make([]byte, secretSniff)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
		return "", err
	}
	buf = buf[:n]
	switch base := path.Base(rel); {
	case base == ".npmrc":
		if npmAuth.Match(buf) {
			return "an .npmrc holding an auth token", nil
		}
	case base == ".pypirc":
		if pypiAuth.Match(buf) {
			return "a .pypirc holding a password", nil
		}
	default:
		if bytes.Contains(buf, privateKeyBlock) {
			return "a private key", nil
		}
	}
	return "", nil
}

// Ignore decides which context paths are left out, with Docker's
// .dockerignore semantics (moby/patternmatcher), including `!` re-includes.
// It records the secret files it leaves out and the ones a `!` pattern
// brought back, for the caller to report (Secrets).
type Ignore struct {
	pm       *patternmatcher.PatternMatcher
	patterns []string
	// secrets: the context rules are on (LoadIgnore). Then keys is pm
	// with keyCandidates after the defaults, and others is pm without
	// the secret defaults (was a path left out for its name, or also by
	// the user's own patterns?).
	secrets bool
	keys    *patternmatcher.PatternMatcher
	others  *patternmatcher.PatternMatcher

	mu  sync.Mutex // patternmatcher's matchers are not safe for concurrent use
	rec *secretRecord
}

// secretRecord is shared by an Ignore and those derived from it (With).
type secretRecord struct {
	mu       sync.Mutex
	seen     map[string]bool
	reported []SecretFile
	// notes are what the context walk shipped differently from the disk
	// or left out without a pattern (Collect), by path.
	notes map[string]string
}

// note records a context note for rel (once per path).
func (ig *Ignore) note(rel, msg string) {
	if ig == nil || ig.rec == nil {
		return
	}
	ig.rec.mu.Lock()
	defer ig.rec.mu.Unlock()
	if ig.rec.notes == nil {
		ig.rec.notes = map[string]string{}
	}
	ig.rec.notes[rel] = msg
}

// Notes returns the context notes met so far, sorted by path: hard links
// shipped as copies, dangling symlinks, special files left out.
func (ig *Ignore) Notes() []string {
	if ig == nil || ig.rec == nil {
		return nil
	}
	ig.rec.mu.Lock()
	defer ig.rec.mu.Unlock()
	var out []string
	for _, k := range slices.Sorted(maps.Keys(ig.rec.notes)) {
		out = append(out, ig.rec.notes[k])
	}
	return out
}

// SecretFile is a context path that looks like a secret.
type SecretFile struct {
	Rel    string
	Reason string
	// Shipped is true when a `!` pattern brought it back.
	Shipped bool
}

// LoadIgnore reads dir/.dockerignore (if any) and combines it with the
// default excludes. Patterns apply in this order, later ones winning as in
// Docker: DefaultExcludes, provider (a provider's own excludes, such as
// node_modules), .dockerignore, user (packer.toml include/exclude). So a
// `!.env.example` line in .dockerignore re-includes a default exclude.
// Key candidates (*.pem, *.key, .npmrc, .pypirc) are also left out when
// their contents hold a secret.
func LoadIgnore(dir string, provider, user []string) (*Ignore, error) {
	var rest []string
	rest = append(rest, provider...)
	raw, err := os.ReadFile(filepath.Join(dir, ".dockerignore"))
	switch {
	case err == nil:
		userPatterns, rerr := ignorefile.ReadAll(bytes.NewReader(raw))
		if rerr != nil {
			return nil, fmt.Errorf("reading .dockerignore: %w; fix the pattern it names", rerr)
		}
		if err := checkIgnoreLines(raw); err != nil {
			return nil, err
		}
		rest = append(rest, userPatterns...)
	case errors.Is(err, fs.ErrNotExist):
	default:
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	return ContextIgnore(append(rest, user...))
}

// checkIgnoreLines names the first .dockerignore line whose pattern is
// not valid, with the pattern (the matcher's own error names neither).
func checkIgnoreLines(raw []byte) error {
	for i, line := range strings.Split(string(raw), "\n") {
		pats, err := ignorefile.ReadAll(strings.NewReader(line))
		if err != nil || len(pats) == 0 {
			continue
		}
		if _, err := patternmatcher.New(pats); err != nil {
			return fmt.Errorf(".dockerignore:%d: invalid pattern %q: %w; fix or remove that line", i+1, strings.TrimSpace(line), err)
		}
	}
	return nil
}

// ContextIgnore builds the Ignore of a build context from patterns in
// .dockerignore syntax: DefaultExcludes first, then patterns, plus the
// content rules for key candidates.
func ContextIgnore(patterns []string) (*Ignore, error) {
	ig, err := NewIgnore(slices.Concat(DefaultExcludes, patterns))
	if err != nil {
		return nil, err
	}
	ig.secrets = true
	if ig.keys, err = patternmatcher.New(slices.Concat(DefaultExcludes, keyCandidates, patterns)); err != nil {
		return nil, fmt.Errorf("invalid ignore pattern: %w", err)
	}
	if ig.others, err = patternmatcher.New(append([]string{".packer"}, patterns...)); err != nil {
		return nil, fmt.Errorf("invalid ignore pattern: %w", err)
	}
	return ig, nil
}

// NewIgnore builds an Ignore from patterns in .dockerignore syntax alone
// (no secret rules: for step outputs such as node_modules, whose packages
// ship .env-named fixtures of their own).
func NewIgnore(patterns []string) (*Ignore, error) {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("invalid ignore pattern: %w", err)
	}
	return &Ignore{pm: pm, patterns: patterns, rec: &secretRecord{seen: map[string]bool{}}}, nil
}

// With returns an Ignore that also leaves out exclude (a layer's own
// excludes), keeping the secret rules and sharing the record of secrets.
func (ig *Ignore) With(exclude []string) (*Ignore, error) {
	if len(exclude) == 0 {
		return ig, nil
	}
	if ig == nil {
		return NewIgnore(exclude)
	}
	if ig.secrets {
		n, err := ContextIgnore(slices.Concat(ig.patterns[len(DefaultExcludes):], exclude))
		if err != nil {
			return nil, err
		}
		n.rec = ig.rec
		return n, nil
	}
	n, err := NewIgnore(slices.Concat(ig.patterns, exclude))
	if err != nil {
		return nil, err
	}
	n.rec = ig.rec
	return n, nil
}

// Patterns returns the patterns in effect.
func (ig *Ignore) Patterns() []string { return ig.patterns }

// Secrets returns the secret-looking files met so far, sorted by path:
// those left out and those a `!` pattern brought back.
func (ig *Ignore) Secrets() []SecretFile {
	if ig == nil {
		return nil
	}
	ig.rec.mu.Lock()
	defer ig.rec.mu.Unlock()
	out := slices.Clone(ig.rec.reported)
	slices.SortFunc(out, func(a, b SecretFile) int { return strings.Compare(a.Rel, b.Rel) })
	return out
}

func (ig *Ignore) report(s SecretFile) {
	ig.rec.mu.Lock()
	defer ig.rec.mu.Unlock()
	if !ig.rec.seen[s.Rel] {
		ig.rec.seen[s.Rel] = true
		ig.rec.reported = append(ig.rec.reported, s)
	}
}

// Excluded reports whether the slash-separated relative path is excluded,
// and for a directory whether the walk may skip it entirely (it may not when
// a `!` pattern could re-include something inside it).
func (ig *Ignore) Excluded(rel string, isDir bool) (excluded, skipDir bool, err error) {
	if ig == nil {
		return false, false, nil
	}
	ig.mu.Lock()
	m, err := ig.pm.MatchesOrParentMatches(filepath.FromSlash(rel))
	ig.mu.Unlock()
	if err != nil {
		return false, false, fmt.Errorf("matching %q against .dockerignore: %w", rel, err)
	}
	if ig.secrets {
		ig.noteSecretName(rel, m)
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

// noteSecretName records a path that is a secret by its name: left out
// because of the defaults (not reported when the user's own patterns left
// it out too, nor the root .git every repository has), or brought back by
// a `!` pattern.
func (ig *Ignore) noteSecretName(rel string, excluded bool) {
	why := secretName(rel)
	if why == "" || rel == ".git" {
		return
	}
	if !excluded {
		ig.report(SecretFile{Rel: rel, Reason: why, Shipped: true})
		return
	}
	ig.mu.Lock()
	byUser, _ := ig.others.MatchesOrParentMatches(filepath.FromSlash(rel))
	ig.mu.Unlock()
	if !byUser {
		ig.report(SecretFile{Rel: rel, Reason: why})
	}
}

// ExcludedContent reports whether a regular file that Excluded kept is
// left out for what it holds: a key candidate whose first 4 KiB show a
// secret, unless a `!` pattern names it.
func (ig *Ignore) ExcludedContent(rel, abs string) (bool, error) {
	if ig == nil || !ig.secrets || !keyCandidate(rel) {
		return false, nil
	}
	why, err := secretContent(rel, abs)
	if err != nil {
		return false, unreadable(rel, err)
	}
	if why == "" {
		return false, nil
	}
	ig.mu.Lock()
	m, err := ig.keys.MatchesOrParentMatches(filepath.FromSlash(rel))
	ig.mu.Unlock()
	if err != nil {
		return false, err
	}
	ig.report(SecretFile{Rel: rel, Reason: why, Shipped: !m})
	return m, nil
}
