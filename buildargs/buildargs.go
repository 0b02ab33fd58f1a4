// Package buildargs parses what the user passes into a build: build args
// (visible to steps and written to the image as ENV), runtime env (--env,
// --env-file: image ENV only) and secrets (--secret: visible to steps only,
// never written anywhere), and guards published artifacts against secret
// values.
package buildargs

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
)

// KV is one variable.
type KV struct {
	Key, Value string
}

var validName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ValidName reports whether s can be an environment variable name.
func ValidName(s string) bool { return validName.MatchString(s) }

// Lookup returns an environment variable; os.LookupEnv in production.
type Lookup func(string) (string, bool)

// ParseBuildArg parses --build-arg KEY=VALUE or --build-arg KEY (the value
// taken from the environment). ok is false when KEY alone is not set in
// the environment: as in docker build, the arg is then left unset.
func ParseBuildArg(s string, env Lookup) (kv KV, ok bool, err error) {
	k, v, hasValue := strings.Cut(s, "=")
	if !ValidName(k) {
		return KV{}, false, fmt.Errorf("invalid --build-arg %q: %q is not a variable name (letters, digits and _, not starting with a digit)", s, k)
	}
	if !hasValue {
		v, ok = env(k)
		if !ok {
			return KV{Key: k}, false, nil
		}
	}
	return KV{Key: k, Value: v}, true, nil
}

// ParseEnv parses --env KEY=VALUE (or KEY, taken from the environment, as
// docker run -e does).
func ParseEnv(s string, env Lookup) (kv KV, ok bool, err error) {
	k, v, hasValue := strings.Cut(s, "=")
	if !ValidName(k) {
		return KV{}, false, fmt.Errorf("invalid --env %q: %q is not a variable name", s, k)
	}
	if !hasValue {
		v, ok = env(k)
		return KV{Key: k, Value: v}, ok, nil
	}
	return KV{Key: k, Value: v}, true, nil
}

// ParseEnvFile reads docker's env-file syntax: one KEY=VALUE per line, the
// value taken verbatim (no quote removal, no expansion); KEY alone takes
// the value from the environment and is skipped when unset; lines starting
// with # and blank lines are ignored; leading whitespace is trimmed.
// Errors name the file and line.
func ParseEnvFile(name string, r io.Reader, env Lookup) ([]KV, error) {
	var out []KV
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if line == 1 {
			text = strings.TrimPrefix(text, "\ufeff") // UTF-8 BOM
		}
		text = strings.TrimSuffix(text, "\r") // CRLF files
		text = strings.TrimLeft(text, " \t")
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, v, hasValue := strings.Cut(text, "=")
		if k == "" {
			return nil, fmt.Errorf("%s:%d: no variable name before '='; write KEY=VALUE", name, line)
		}
		if strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s:%d: variable %s contains whitespace; write KEY=VALUE (is %s an env file?)", name, line, clip(k), name)
		}
		if !hasValue {
			val, ok := env(k)
			if !ok {
				continue
			}
			v = val
		}
		out = append(out, KV{Key: k, Value: v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}

// clip quotes s for an error message, cut to 40 bytes: a line of a
// binary or minified file must not flood the terminal.
func clip(s string) string {
	if len(s) <= 40 {
		return strconv.Quote(s)
	}
	return strconv.Quote(s[:40]) + fmt.Sprintf("… (%d bytes)", len(s))
}

// ReadEnvFile opens and parses an env file.
func ReadEnvFile(path string, env Lookup) ([]KV, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	return ParseEnvFile(path, f, env)
}

var secretWords = []string{"TOKEN", "SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "API_KEY", "APIKEY", "PRIVATE_KEY", "CREDENTIAL", "ACCESS_KEY", "AUTH_KEY", "CLIENT_SECRET"}

// LooksSecret reports whether a variable name suggests it holds a secret.
func LooksSecret(name string) bool {
	up := strings.ToUpper(name)
	for _, w := range secretWords {
		if strings.Contains(up, w) {
			return true
		}
	}
	return false
}

// CheckBuildArgs refuses build args whose names look like secrets: their
// values would be written to the image config for anyone who pulls it.
func CheckBuildArgs(args []KV, allow bool) error {
	if allow {
		return nil
	}
	for _, a := range args {
		if LooksSecret(a.Key) {
			return fmt.Errorf("--build-arg %s looks like a secret, and build args are written to the image as ENV; pass it with --secret id=%s,env=%s (steps see it, the image never does), or --allow-secret-build-args if it is not secret", a.Key, a.Key, a.Key)
		}
	}
	return nil
}

// Map turns a list into a map; later entries win.
func Map(kvs []KV) map[string]string {
	if len(kvs) == 0 {
		return nil
	}
	m := map[string]string{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}
