package testutil

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// OtherNodeVersion is the Node.js of NodeBase: another major than the
// Debian test base's (and this machine's) 20, so a step run inside it
// shows whose Node.js did the work.
const OtherNodeVersion = "22.12.0"

// otherNPMVersion is the npm NodeBase ships, as Node.js 22.12 does.
const otherNPMVersion = "10.9.0"

var nodeBase onceBase

// NodeBase returns "oci:DIR:node22": the Debian test base with Node.js
// OtherNodeVersion and npm in /usr/local, as the official node images
// lay them out (binary, headers, npm), and their NODE_VERSION variable.
// Both come from the npm registry (node-linux-<arch> holds Node.js's
// release files). Built once per TestCacheDir.
func NodeBase(t testing.TB) string {
	t.Helper()
	debian := DebianBase(t)
	return nodeBase.get(t, "Node.js "+OtherNodeVersion, func() (string, error) { return ensureNodeBase(debian) })
}

// onceBase builds a test base once per test binary; a base that cannot
// be built fails the test under CI and skips it elsewhere.
type onceBase struct {
	once     sync.Once
	ref, err string
}

func (b *onceBase) get(t testing.TB, what string, build func() (string, error)) string {
	t.Helper()
	b.once.Do(func() {
		ref, err := build()
		b.ref = ref
		if err != nil {
			b.err = err.Error()
		}
	})
	if b.err != "" {
		if InCI() {
			t.Fatalf("%s test base: %s", what, b.err)
		}
		t.Skipf("SKIP: %s test base unavailable: %s", what, b.err)
	}
	return b.ref
}

// EnsureNodeBase builds (once per TestCacheDir) and returns NodeBase's
// reference, outside a test (the benchmarks).
func EnsureNodeBase() (string, error) {
	debian, err := EnsureDebianBase()
	if err != nil {
		return "", err
	}
	return ensureNodeBase(debian)
}

func ensureNodeBase(debian string) (string, error) {
	arch := map[string]string{"amd64": "x64", "arm64": "arm64"}[runtime.GOARCH]
	if arch == "" {
		return "", fmt.Errorf("no Node.js package for %s", runtime.GOARCH)
	}
	return npmBase(debian, npmBaseSpec{
		name: "node" + OtherNodeVersion, tag: "node22",
		// package/bin/node → usr/local/bin/node, package/include →
		// usr/local/include, npm's package/ → usr/local/lib/node_modules/npm.
		packages: []npmPackage{
			{"node-linux-" + arch + "@" + OtherNodeVersion, func(n string) string {
				switch {
				case n == "bin/node":
					return "usr/local/bin/node"
				case strings.HasPrefix(n, "include/"):
					return "usr/local/" + n
				}
				return ""
			}},
			{"npm@" + otherNPMVersion, func(n string) string { return "usr/local/lib/node_modules/npm/" + n }},
		},
		symlinks: map[string]string{"usr/local/bin/npm": "../lib/node_modules/npm/bin/npm-cli.js", "usr/local/bin/npx": "../lib/node_modules/npm/bin/npx-cli.js"},
		env:      []string{"NODE_VERSION=" + OtherNodeVersion},
	})
}

// npmPackage is a package of the npm registry (NAME@VERSION) and where
// its files go in the image ("" leaves a file out).
type npmPackage struct {
	spec   string
	rename func(string) string
}

// npmBaseSpec is a test base: the Debian test base plus one layer made of
// npm packages' files, symbolic links and environment variables.
type npmBaseSpec struct {
	name, tag string
	packages  []npmPackage
	symlinks  map[string]string
	env       []string
}

// npmBase builds spec once per TestCacheDir (and Debian base) and returns
// "oci:DIR:TAG".
func npmBase(debian string, spec npmBaseSpec) (string, error) {
	dir, err := TestCacheDir()
	if err != nil {
		return "", err
	}
	_, debianLayout := debianPaths(dir)
	layoutDir := filepath.Join(dir, fmt.Sprintf("%s-oci-%s-%s", spec.name, runtime.GOARCH, filepath.Base(debianLayout)))
	if _, err := os.Stat(filepath.Join(layoutDir, "index.json")); err == nil {
		return "oci:" + layoutDir + ":" + spec.tag, nil
	}
	work, err := os.MkdirTemp(dir, ".npmbase-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(work)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	dirs := map[string]bool{}
	mkdirs := func(name string) error {
		parts := strings.Split(name, "/")
		for i := 1; i < len(parts); i++ {
			d := strings.Join(parts[:i], "/")
			if dirs[d] {
				continue
			}
			dirs[d] = true
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				return err
			}
		}
		return nil
	}
	copyTgz := func(file string, rename func(string) string) error {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		zr, err := gzip.NewReader(f)
		if err != nil {
			return err
		}
		tr := tar.NewReader(zr)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			name := rename(strings.TrimPrefix(h.Name, "package/"))
			if name == "" || h.Typeflag != tar.TypeReg {
				continue
			}
			if err := mkdirs(name); err != nil {
				return err
			}
			mode := int64(0o644)
			if h.Mode&0o111 != 0 || strings.HasPrefix(name, "usr/local/bin/") || strings.Contains(name, "/bin/") {
				mode = 0o755
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: h.Size}); err != nil {
				return err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
		}
	}
	for _, pkg := range spec.packages {
		cmd := exec.Command("npm", "pack", "--silent", pkg.spec)
		cmd.Dir = work
		out, err := cmd.Output()
		if err != nil {
			return "", fmt.Errorf("npm pack %s: %w\n%s", pkg.spec, err, out)
		}
		lines := strings.Fields(string(out))
		if len(lines) == 0 {
			return "", fmt.Errorf("npm pack %s printed no file name", pkg.spec)
		}
		if err := copyTgz(filepath.Join(work, lines[len(lines)-1]), pkg.rename); err != nil {
			return "", fmt.Errorf("%s: %w", pkg.spec, err)
		}
	}
	names := make([]string, 0, len(spec.symlinks))
	for name := range spec.symlinks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeSymlink, Linkname: spec.symlinks[name], Mode: 0o777}); err != nil {
			return "", err
		}
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	raw := layer.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(raw)), nil }, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return "", err
	}
	if err := onDebian(debian, l, spec.env, dir, spec.tag, layoutDir); err != nil {
		return "", err
	}
	return "oci:" + layoutDir + ":" + spec.tag, nil
}

// onDebian writes the Debian test base plus layer l and env, tagged tag,
// as the layout layoutDir (built in dir).
func onDebian(debian string, l v1.Layer, env []string, dir, tag, layoutDir string) error {
	base, err := LayoutImage(debian)
	if err != nil {
		return fmt.Errorf("the Debian test base: %w", err)
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		return err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cfg = cfg.DeepCopy()
	var kept []string
	for _, kv := range cfg.Config.Env {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, k+"=") }) {
			kept = append(kept, kv)
		}
	}
	cfg.Config.Env = append(kept, env...)
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return err
	}
	return writeLayout(dir, img, tag, layoutDir)
}

// LayoutImage returns the image tagged TAG in the OCI layout of an
// oci:DIR:TAG reference (the test bases' form).
func LayoutImage(ref string) (v1.Image, error) {
	dir, tag, _ := strings.Cut(strings.TrimPrefix(ref, "oci:"), ":")
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	for _, m := range im.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] == tag {
			return idx.Image(m.Digest)
		}
	}
	return nil, fmt.Errorf("no image tagged %q in %s", tag, dir)
}
