package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"path"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/crypto/x509roots/fallback/bundle"

	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/plan"
)

// Non-root identity every image runs as unless the plan says otherwise.
const (
	NonRootUID  = plan.NonRootUID
	NonRootName = plan.NonRootName
	NonRootHome = plan.NonRootHome
)

var (
	passwdRoot    = "root:x:0:0:root:/root:/sbin/nologin\n"
	passwdNonRoot = fmt.Sprintf("%s:x:%d:%d:%s:%s:/sbin/nologin\n", NonRootName, NonRootUID, NonRootUID, NonRootName, NonRootHome)
	groupRoot     = "root:x:0:\n"
	groupNonRoot  = fmt.Sprintf("%s:x:%d:\n", NonRootName, NonRootUID)
)

// caBundle returns Mozilla's root certificates (pinned by the module
// version of golang.org/x/crypto/x509roots/fallback) as a PEM bundle.
func caBundle() []byte {
	var b bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue // distrust-after constraints cannot be expressed in a PEM file
		}
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate}))
	}
	return b.Bytes()
}

// staticBaseEntries is the one layer of the builtin static base.
func staticBaseEntries() []layers.Entry {
	return []layers.Entry{
		{Name: "/etc", Dir: true, Mode: 0o755},
		{Name: "/etc/group", Mode: 0o644, Data: []byte(groupRoot + groupNonRoot)},
		{Name: "/etc/nsswitch.conf", Mode: 0o644, Data: []byte("hosts: files dns\n")},
		{Name: "/etc/passwd", Mode: 0o644, Data: []byte(passwdRoot + passwdNonRoot)},
		{Name: "/etc/ssl", Dir: true, Mode: 0o755},
		{Name: "/etc/ssl/certs", Dir: true, Mode: 0o755},
		{Name: "/etc/ssl/certs/ca-certificates.crt", Mode: 0o644, Data: caBundle()},
		{Name: "/home", Dir: true, Mode: 0o755},
		{Name: NonRootHome, Dir: true, Mode: 0o755, UID: NonRootUID, GID: NonRootUID},
		{Name: "/tmp", Dir: true, Mode: 0o1777},
	}
}

// baseFacts is what packer needs to know about a pulled base's files.
type baseFacts struct {
	Passwd, Group []byte
	// Init is the path of an init (tini) in the base, or "".
	Init string
	// Bash is the path of bash in the base, or "": without tini, packer's
	// init script runs under it.
	Bash string
	// Dpkg holds the versions of the Debian packages runtimes come in
	// (dpkgRuntimes), when the base has a dpkg database.
	Dpkg map[string]string
	// Musl: the base's C library is musl (Alpine), not glibc.
	Musl bool `json:",omitempty"`
}

// dpkgRuntimes are the Debian packages whose versions the base facts keep.
var dpkgRuntimes = []string{"nodejs", "python3"}

// initPaths are where Debian's and Alpine's tini packages put tini.
var initPaths = []string{"usr/bin/tini", "sbin/tini", "usr/sbin/tini"}

// bashPaths are where distributions put bash (Debian's usrmerge: usr/bin).
var bashPaths = []string{"usr/bin/bash", "bin/bash"}

// InitScript is packer's init for bases without tini, run under bash as
// PID 1: the app runs as its child; TERM, INT, HUP, QUIT, USR1 and USR2 are
// passed on to it; bash's SIGCHLD handling waits for any child, so orphans
// re-parented to PID 1 are reaped; it exits with the app's status.
const InitScript = `# packer init: PID 1 for images whose base has no tini.
"$@" &
app=$!
for sig in TERM INT HUP QUIT USR1 USR2; do
  trap "kill -$sig $app 2>/dev/null" "$sig"
done
while :; do
  wait "$app"
  status=$?
  kill -0 "$app" 2>/dev/null || exit "$status"
done
`

// InitPath is where the init script goes in the image.
const InitPath = plan.InitPath

// initEntries is the layer holding the init script for bash at bashPath.
func initEntries(bashPath string) []layers.Entry {
	return []layers.Entry{
		{Name: "/opt", Dir: true, Mode: 0o755},
		{Name: "/opt/packer", Dir: true, Mode: 0o755},
		{Name: InitPath, Mode: 0o755, Data: []byte("#!" + bashPath + "\n" + InitScript)},
	}
}

// inspectBase scans the base's layers (top down) once per base digest and
// caches the result in the store: a Debian base is ~260 MB to decompress.
func inspectBase(ctx context.Context, store *layers.Store, base v1.Image) (*baseFacts, error) {
	if f := cachedFacts(store, base); f != nil {
		return f, nil
	}
	d, err := base.Digest()
	if err != nil {
		return nil, err
	}
	key := factsKey(d)
	names := append(append([]string{"etc/passwd", "etc/group", "var/lib/dpkg/status"}, initPaths...), bashPaths...)
	files, err := findFiles(ctx, base, store, append(names, muslLoaders()...)...)
	if err != nil {
		return nil, fmt.Errorf("reading the base image's files: %w", err)
	}
	f := &baseFacts{Passwd: files["etc/passwd"], Group: files["etc/group"], Dpkg: dpkgVersions(files["var/lib/dpkg/status"], dpkgRuntimes)}
	for _, p := range initPaths {
		if _, ok := files[p]; ok {
			f.Init = "/" + p
			break
		}
	}
	for _, p := range bashPaths {
		if _, ok := files[p]; ok {
			f.Bash = "/" + p
			break
		}
	}
	for _, p := range muslLoaders() {
		if _, ok := files[p]; ok {
			f.Musl = true
		}
	}
	if b, err := json.Marshal(f); err == nil {
		_ = store.WriteMeta(key, b) // best effort: without it the next build scans the base again
	}
	return f, nil
}

// userEntries returns a small layer adding the non-root user to a base that
// lacks it, or nil when the base already has it. The base's own passwd and
// group files are extended, never replaced.
func userEntries(facts *baseFacts) []layers.Entry {
	passwd, group := facts.Passwd, facts.Group
	if hasID(passwd, NonRootUID) && hasID(group, NonRootUID) {
		return nil
	}
	if passwd == nil {
		passwd = []byte(passwdRoot)
	}
	if group == nil {
		group = []byte(groupRoot)
	}
	if !hasID(passwd, NonRootUID) {
		passwd = appendLine(passwd, passwdNonRoot)
	}
	if !hasID(group, NonRootUID) {
		group = appendLine(group, groupNonRoot)
	}
	return []layers.Entry{
		{Name: "/etc", Dir: true, Mode: 0o755},
		{Name: "/etc/group", Mode: 0o644, Data: group},
		{Name: "/etc/passwd", Mode: 0o644, Data: passwd},
		{Name: "/home", Dir: true, Mode: 0o755},
		{Name: NonRootHome, Dir: true, Mode: 0o755, UID: NonRootUID, GID: NonRootUID},
		{Name: "/tmp", Dir: true, Mode: 0o1777},
	}
}

func appendLine(b []byte, line string) []byte {
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	return append(b, line...)
}

// hasID reports whether a passwd or group file has an entry with the id in
// its third field.
func hasID(b []byte, id int) bool {
	want := fmt.Sprint(id)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 3 && f[2] == want {
			return true
		}
	}
	return false
}

// findFiles returns the contents of the named files (paths without a
// leading slash) as the image's filesystem shows them: the topmost layer
// that has or deletes a file wins.
// factsKey is the cache key of a base's facts.
func factsKey(d v1.Hash) string { return "base-facts-v4-" + d.Hex }

// cachedFacts returns the base's facts from the cache, or nil.
func cachedFacts(store *layers.Store, base v1.Image) *baseFacts {
	d, err := base.Digest()
	if err != nil {
		return nil
	}
	b, ok := store.ReadMeta(factsKey(d))
	if !ok {
		return nil
	}
	var f baseFacts
	if json.Unmarshal(b, &f) != nil {
		return nil
	}
	return &f
}

func findFiles(ctx context.Context, img v1.Image, store *layers.Store, names ...string) (map[string][]byte, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	done := map[string]bool{}
	for i := len(ls) - 1; i >= 0 && len(done) < len(names); i-- {
		digest, err := ls[i].Digest()
		if err != nil {
			return nil, err
		}
		rc, err := layers.Uncompressed(ls[i])
		if err != nil {
			return nil, err
		}
		// The store's Tee (the SBOM scanner) reads the layer too, so the
		// image's SBOM need not decompress the base again.
		r, teeDone := store.TeeReader(layers.ContextReader(ctx, rc))
		found := map[string]bool{}
		err = layers.Entries(r, func(n string, h *tar.Header, body io.Reader) error {
			for _, want := range names {
				if done[want] {
					continue
				}
				dir, base := path.Split(want)
				switch {
				case n == want && (h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink):
					var b []byte
					if h.Typeflag == tar.TypeReg && h.Size < 1<<20 {
						var err error
						if b, err = io.ReadAll(body); err != nil {
							return err
						}
					}
					if b == nil {
						b = []byte{}
					}
					out[want], found[want] = b, true
				case n == path.Join(dir, ".wh."+base):
					found[want] = true
				}
			}
			return nil
		})
		if err == nil {
			_, err = io.Copy(io.Discard, r) // the tar's padding, for the Tee
		}
		if f := teeDone(err); f != nil {
			f(layers.Descriptor{Digest: digest})
		}
		rc.Close()
		if err != nil {
			return nil, err
		}
		// Only mark done after the whole layer: a layer holds one version.
		for want := range found {
			done[want] = true
		}
	}
	return out, nil
}

// dpkgVersions reads the upstream versions of the named, installed
// packages from a dpkg status file ("20.19.2+dfsg-1" → "20.19.2").
func dpkgVersions(status []byte, names []string) map[string]string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]string{}
	for _, para := range strings.Split(string(status), "\n\n") {
		var pkg, ver string
		installed := false
		for _, line := range strings.Split(para, "\n") {
			switch {
			case strings.HasPrefix(line, "Package: "):
				pkg = strings.TrimSpace(strings.TrimPrefix(line, "Package: "))
			case strings.HasPrefix(line, "Version: "):
				ver = strings.TrimSpace(strings.TrimPrefix(line, "Version: "))
			case strings.HasPrefix(line, "Status: "):
				installed = strings.HasSuffix(strings.TrimSpace(line), " installed")
			}
		}
		if want[pkg] && installed && ver != "" {
			if i := strings.IndexByte(ver, ':'); i >= 0 {
				ver = ver[i+1:] // epoch
			}
			ver = strings.FieldsFunc(ver, func(r rune) bool { return r == '+' || r == '-' || r == '~' })[0]
			out[pkg] = ver
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkUser checks the image's user against the base: a name must be in
// its passwd (group: its group file), or be packer's own non-root user,
// which packer adds; scratch has no such files, so only numbers work
// there. Running as root is allowed, with a warning.
func checkUser(user, base string, facts *baseFacts) (warning string, err error) {
	u, g, _ := strings.Cut(user, ":")
	if u == "0" || u == "root" {
		warning = "the image runs as root (user " + user + "): anything that breaks out of the app owns the container; use a non-root UID unless the app needs root"
	}
	var passwd, group []byte
	switch {
	case facts != nil:
		passwd, group = facts.Passwd, facts.Group
	case base == plan.BaseStatic:
		passwd, group = []byte(passwdRoot+passwdNonRoot), []byte(groupRoot+groupNonRoot)
	}
	has := func(file []byte, name string) bool {
		if name == NonRootName {
			return true // packer adds it when the base lacks it
		}
		for _, line := range strings.Split(string(file), "\n") {
			if f := strings.Split(line, ":"); len(f) >= 3 && f[0] == name {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		name, kind, file string
		data             []byte
	}{{u, "user", "/etc/passwd", passwd}, {g, "group", "/etc/group", group}} {
		if c.name == "" || isNumber(c.name) {
			continue
		}
		if !has(c.data, c.name) {
			return warning, fmt.Errorf("%s %q is not in the base image's %s (%s), so the image could not start as %s: give a numeric UID[:GID], or a %s the base has", c.kind, c.name, c.file, base, user, c.kind)
		}
	}
	return warning, nil
}

func isNumber(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}
