package buildargs

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/packer-build/packer/internal/tmpdir"
)

// Secret is one --secret: a value steps can read, never written anywhere.
type Secret struct {
	// ID names the secret; steps see the file $PACKER_SECRETS/ID and, for
	// env secrets, the variable ID.
	ID string
	// Env is the host variable the value came from, or "".
	Env string
	// Src is the host file the value came from, or "".
	Src   string
	value []byte
}

// Value returns the secret's bytes.
func (s Secret) Value() []byte { return s.value }

// MinGuardedLen is the shortest secret value the leak guard looks for;
// shorter values would match by chance.
const MinGuardedLen = 6

// wellKnown maps secret ids to the variable that makes a tool use the
// secret file: an .npmrc or pip.conf for a private registry, a netrc.
var wellKnown = map[string]string{
	"npmrc":    "NPM_CONFIG_USERCONFIG",
	".npmrc":   "NPM_CONFIG_USERCONFIG",
	"pip.conf": "PIP_CONFIG_FILE",
	"pipconf":  "PIP_CONFIG_FILE",
	"netrc":    "NETRC",
	".netrc":   "NETRC",
}

// ParseSecret parses --secret id=NAME,env=VAR or id=NAME,src=FILE (docker
// buildx's syntax; type=env|file is accepted and checked) and reads the
// value now, so a missing source fails before any work.
func ParseSecret(s string, env Lookup) (Secret, error) {
	var sec Secret
	var typ string
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Secret{}, fmt.Errorf("invalid --secret %q: %q is not key=value; use id=NAME,env=VAR or id=NAME,src=FILE", s, part)
		}
		switch k {
		case "id":
			sec.ID = v
		case "env":
			sec.Env = v
		case "src", "source":
			sec.Src = v
		case "type":
			typ = v
		default:
			return Secret{}, fmt.Errorf("invalid --secret %q: unknown key %q; use id=NAME,env=VAR or id=NAME,src=FILE", s, k)
		}
	}
	if sec.ID == "" || strings.ContainsAny(sec.ID, `/\`) || sec.ID == "." || sec.ID == ".." {
		return Secret{}, fmt.Errorf("invalid --secret %q: needs id=NAME (no slashes)", s)
	}
	if (sec.Env == "") == (sec.Src == "") {
		return Secret{}, fmt.Errorf("invalid --secret %q: give exactly one of env=VAR or src=FILE", s)
	}
	if typ != "" && !(typ == "env" && sec.Env != "" || typ == "file" && sec.Src != "") {
		return Secret{}, fmt.Errorf("invalid --secret %q: type=%s does not match its source", s, typ)
	}
	if sec.Env != "" {
		v, ok := env(sec.Env)
		if !ok {
			return Secret{}, fmt.Errorf("--secret %s: environment variable %s is not set; export it first", sec.ID, sec.Env)
		}
		sec.value = []byte(v)
		return sec, nil
	}
	b, err := os.ReadFile(sec.Src)
	if err != nil {
		return Secret{}, fmt.Errorf("--secret %s: reading %s: %w", sec.ID, sec.Src, err)
	}
	sec.value = b
	return sec, nil
}

// Secrets is the set of secrets of one build.
type Secrets []Secret

// Values returns the values the leak guard looks for, longest first.
func (ss Secrets) Values() [][]byte {
	var out [][]byte
	for _, s := range ss {
		out = append(out, guardedValues(s.value)...)
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// configLimit is the size up to which a text secret counts as config-like.
const configLimit = 64 << 10

// guardedValues is the value itself and:
//   - for config-like secrets (text up to 64 KiB without PEM blocks), each
//     long enough line and the value part of each KEY=VALUE or KEY: VALUE
//     line (a token copied out of an .npmrc or pip.conf is still a leak);
//   - for PEM files, each private key block and each line of its body (a
//     CA bundle's certificates are public, and a bundle of hundreds of
//     roots must not become thousands of needles).
func guardedValues(v []byte) [][]byte {
	seen := map[string]bool{}
	var out [][]byte
	add := func(s string) {
		if len(s) >= MinGuardedLen && !seen[s] {
			seen[s] = true
			out = append(out, []byte(s))
		}
	}
	add(string(v))
	if trimmed := strings.TrimSpace(string(v)); trimmed != string(v) {
		add(trimmed)
	}
	if bytes.Contains(v, []byte("-----BEGIN ")) {
		rest := string(v)
		for {
			i := strings.Index(rest, "-----BEGIN ")
			if i < 0 {
				break
			}
			rest = rest[i:]
			head, _, _ := strings.Cut(rest, "\n")
			j := strings.Index(rest, "-----END ")
			if j < 0 {
				break
			}
			k := strings.Index(rest[j+len("-----END "):], "-----")
			if k < 0 {
				break
			}
			block := rest[:j+len("-----END ")+k+len("-----")]
			rest = rest[len(block):]
			if !strings.Contains(head, "PRIVATE KEY") {
				continue
			}
			add(block)
			for _, line := range strings.Split(block, "\n") {
				if line = strings.TrimSpace(line); !strings.HasPrefix(line, "-----") {
					add(line)
				}
			}
		}
		return out
	}
	if len(v) > configLimit || !utf8.Valid(v) {
		return out
	}
	for _, line := range strings.Split(string(v), "\n") {
		line = strings.TrimSpace(line)
		add(line)
		for _, sep := range []string{"=", ":"} {
			if _, val, ok := strings.Cut(line, sep); ok {
				add(strings.Trim(strings.TrimSpace(val), `"'`))
			}
		}
	}
	return out
}

// Unguarded lists secrets too short to guard against leaks.
func (ss Secrets) Unguarded() []string {
	var out []string
	for _, s := range ss {
		if len(s.value) < MinGuardedLen {
			out = append(out, s.ID)
		}
	}
	return out
}

// Mount writes every secret as a 0600 file in a private temporary
// directory (never inside the staging copy) and returns the variables
// steps see: PACKER_SECRETS=dir, ID=value for env secrets, and the
// well-known variables (NPM_CONFIG_USERCONFIG, PIP_CONFIG_FILE, NETRC)
// for files with those ids. cleanup removes the directory.
func (ss Secrets) Mount() (env map[string]string, cleanup func(), err error) {
	if len(ss) == 0 {
		return nil, func() {}, nil
	}
	// Secrets a killed build left behind go first.
	tmpdir.Reclaim(os.TempDir(), "packer-secrets-")
	dir, err := tmpdir.Mkdir("", "packer-secrets-")
	if err != nil {
		return nil, nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	env = map[string]string{"PACKER_SECRETS": dir}
	for _, s := range ss {
		p := filepath.Join(dir, s.ID)
		if err := os.WriteFile(p, s.value, 0o600); err != nil {
			cleanup()
			return nil, nil, err
		}
		if s.Env != "" && ValidName(s.ID) {
			env[s.ID] = string(s.value)
		}
		if v, ok := wellKnown[s.ID]; ok {
			env[v] = p
		}
	}
	return env, cleanup, nil
}

// Redact returns a writer that replaces secret values with "****" before
// they reach w. It holds back incomplete lines (up to 64 KiB) so a value
// split across writes is still caught; Flush writes what is held back.
func (ss Secrets) Redact(w io.Writer) *Redactor {
	return &Redactor{w: w, vals: ss.Values()}
}

// Redactor is the writer Redact returns.
type Redactor struct {
	mu   sync.Mutex
	w    io.Writer
	vals [][]byte
	buf  []byte
}

func (r *Redactor) Write(p []byte) (int, error) {
	if len(r.vals) == 0 {
		return r.w.Write(p)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	cut := bytes.LastIndexByte(r.buf, '\n') + 1
	if cut == 0 && len(r.buf) > 64<<10 {
		cut = len(r.buf) - len(r.vals[0]) // keep a possible partial value
	}
	if cut <= 0 {
		return len(p), nil
	}
	if err := r.emit(r.buf[:cut]); err != nil {
		return 0, err
	}
	r.buf = append(r.buf[:0], r.buf[cut:]...)
	return len(p), nil
}

func (r *Redactor) emit(b []byte) error {
	for _, v := range r.vals {
		b = bytes.ReplaceAll(b, v, []byte("****"))
	}
	_, err := r.w.Write(b)
	return err
}

// Flush writes any held-back partial line.
func (r *Redactor) Flush() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.buf) == 0 {
		return nil
	}
	err := r.emit(r.buf)
	r.buf = r.buf[:0]
	return err
}
