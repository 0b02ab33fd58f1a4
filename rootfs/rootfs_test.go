package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

type entry struct {
	name, link string
	typ        byte
	mode       int64
	data       string
}

func layer(t *testing.T, ents ...entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.data))}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Typeflag != tar.TypeReg {
			h.Size = 0
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Size > 0 {
			tw.Write([]byte(e.data))
		}
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func image(t *testing.T, ls ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		return "<" + err.Error() + ">"
	}
	return string(b)
}

func TestUnpackLayers(t *testing.T) {
	lower := layer(t,
		entry{name: "etc/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "etc/os-release", data: "ID=debian\n"},
		entry{name: "etc/gone", data: "deleted above"},
		entry{name: "usr/bin/node", mode: 0o755, data: "#!node"},
		entry{name: "usr/bin/su", mode: 0o4755, data: "su"},
		entry{name: "bin", typ: tar.TypeSymlink, link: "usr/bin"},
		entry{name: "var/run", typ: tar.TypeSymlink, link: "/run"},
		entry{name: "opt/old/a", data: "lower a"},
		entry{name: "opt/old/b", data: "lower b"},
		entry{name: "usr/bin/nodejs", typ: tar.TypeLink, link: "usr/bin/node"},
	)
	upper := layer(t,
		entry{name: "etc/.wh.gone", data: ""},
		entry{name: "opt/old/", typ: tar.TypeDir, mode: 0o755},
		entry{name: "opt/old/.wh..wh..opq"},
		entry{name: "opt/old/c", data: "upper c"},
		entry{name: "var/run/app.pid", data: "42"},      // through the absolute link: stays inside
		entry{name: "bin/tool", mode: 0o755, data: "t"}, // through bin -> usr/bin
		entry{name: "escape", typ: tar.TypeSymlink, link: "/"},
		entry{name: "escape/etc/hosts", data: "inside"}, // not the host's /etc/hosts
	)
	dir := t.TempDir()
	if err := Unpack(context.Background(), image(t, lower, upper), dir); err != nil {
		t.Fatalf("Unpack() = %v", err)
	}
	for p, want := range map[string]string{
		"etc/os-release": "ID=debian\n", "usr/bin/node": "#!node", "opt/old/c": "upper c",
		"run/app.pid": "42", "usr/bin/tool": "t", "etc/hosts": "inside", "usr/bin/nodejs": "#!node",
	} {
		if got := read(t, filepath.Join(dir, p)); got != want {
			t.Errorf("/%s = %q, want %q", p, got, want)
		}
	}
	for _, gone := range []string{"etc/gone", "opt/old/a", "opt/old/b"} {
		if _, err := os.Lstat(filepath.Join(dir, gone)); err == nil {
			t.Errorf("/%s survived its whiteout", gone)
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "usr/bin/su")); err != nil || st.Mode()&os.ModeSetuid == 0 || st.Mode().Perm() != 0o755 {
		t.Errorf("/usr/bin/su mode = %v, %v; want setuid 0755", st.Mode(), err)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "bin")); l != "usr/bin" {
		t.Errorf("/bin -> %q", l)
	}
	a, _ := os.Stat(filepath.Join(dir, "usr/bin/node"))
	b, _ := os.Stat(filepath.Join(dir, "usr/bin/nodejs"))
	if !os.SameFile(a, b) {
		t.Errorf("the hard link is a copy")
	}
}

func TestCachedOncePerDigest(t *testing.T) {
	img := image(t, layer(t, entry{name: "etc/os-release", data: "ID=debian\n"}))
	cache := t.TempDir()
	var wg sync.WaitGroup
	dirs := make([]string, 4)
	errs := make([]error, 4)
	for i := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs[i], errs[i] = Cached(context.Background(), img, cache)
		}()
	}
	wg.Wait()
	for i := range dirs {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Fatalf("Cached() #%d = %q, %v; want %q", i, dirs[i], errs[i], dirs[0])
		}
	}
	if got := read(t, filepath.Join(dirs[0], "etc/os-release")); got != "ID=debian\n" {
		t.Errorf("os-release = %q", got)
	}
	left, _ := filepath.Glob(filepath.Join(cache, "rootfs", ".unpack-*"))
	if len(left) > 0 {
		t.Errorf("temp dirs left behind: %v", left)
	}
	// A cancelled unpack leaves nothing under the final name.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	other := image(t, layer(t, entry{name: "x", data: "y"}))
	if _, err := Cached(ctx, other, cache); err == nil {
		t.Errorf("Cached(cancelled) succeeded")
	}
	d, _ := other.Digest()
	if _, err := os.Stat(filepath.Join(cache, "rootfs", d.Hex)); err == nil {
		t.Errorf("a cancelled unpack was kept")
	}
}
