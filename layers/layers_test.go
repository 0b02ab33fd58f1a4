package layers

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/static"
	ggcrtarball "github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func write(t *testing.T, root, rel, data string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(root, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

type entry struct {
	Name     string
	Mode     int64
	Uid, Gid int
	Type     byte
	Link     string
	Body     string
	ModTime  int64
	PAX      int
}

func readTar(t *testing.T, r io.Reader) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, entry{h.Name, h.Mode, h.Uid, h.Gid, h.Typeflag, h.Linkname, string(b), h.ModTime.Unix(), len(h.PAXRecords)})
	}
}

func TestWriteTarNormalises(t *testing.T) {
	root := t.TempDir()
	write(t, root, "b/run.sh", "#!/bin/sh\n", 0o700)
	write(t, root, "a.txt", "a", 0o600)
	write(t, root, "b/c/d.txt", "d", 0o666)
	if err := os.Symlink("c/d.txt", filepath.Join(root, "b/link")); err != nil {
		t.Fatal(err)
	}
	files, err := Collect(root, nil, nil)
	if err != nil {
		t.Fatalf("Collect() = %v", err)
	}
	var buf bytes.Buffer
	if err := WriteTar(&buf, files, Spec{Dest: "/app", UID: 10, GID: 20}); err != nil {
		t.Fatalf("WriteTar() = %v", err)
	}
	got := readTar(t, &buf)
	want := []entry{
		{Name: "app/", Mode: 0o755, Type: tar.TypeDir},
		{Name: "app/a.txt", Mode: 0o644, Uid: 10, Gid: 20, Type: tar.TypeReg, Body: "a"},
		{Name: "app/b/", Mode: 0o755, Uid: 10, Gid: 20, Type: tar.TypeDir},
		{Name: "app/b/c/", Mode: 0o755, Uid: 10, Gid: 20, Type: tar.TypeDir},
		{Name: "app/b/c/d.txt", Mode: 0o644, Uid: 10, Gid: 20, Type: tar.TypeReg, Body: "d"},
		{Name: "app/b/link", Mode: 0o777, Uid: 10, Gid: 20, Type: tar.TypeSymlink, Link: "c/d.txt"},
		{Name: "app/b/run.sh", Mode: 0o755, Uid: 10, Gid: 20, Type: tar.TypeReg, Body: "#!/bin/sh\n"},
	}
	for i := range want {
		want[i].ModTime = ModTime.Unix()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("tar entries:\n got %+v\nwant %+v", got, want)
	}
}

func TestLayerDigestIgnoresMtimesAndPlace(t *testing.T) {
	mk := func(mtime time.Time) string {
		root := filepath.Join(t.TempDir(), "somewhere", "else")
		write(t, root, "main.go", "package main", 0o644)
		write(t, root, "templates/x.html", "<p>", 0o640)
		for _, p := range []string{"main.go", "templates/x.html", "templates", "."} {
			os.Chtimes(filepath.Join(root, p), mtime, mtime)
		}
		s, err := NewStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		files, err := Collect(root, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		l, hit, err := s.FromFiles(t.Context(), files, Spec{Dest: "/app"})
		if err != nil || hit {
			t.Fatalf("FromFiles() = %v, hit %v", err, hit)
		}
		if err := validate.Layer(l); err != nil {
			t.Fatalf("validate.Layer() = %v", err)
		}
		return l.Desc.Digest.String()
	}
	a := mk(time.Unix(1000, 0))
	b := mk(time.Now())
	if a != b {
		t.Errorf("digests differ with mtimes and directories: %s vs %s", a, b)
	}
}

func TestStoreReusesByContent(t *testing.T) {
	root := t.TempDir()
	write(t, root, "f", "one", 0o644)
	s, _ := NewStore(t.TempDir())
	files, _ := Collect(root, nil, nil)
	l1, hit, err := s.FromFiles(t.Context(), files, Spec{Dest: "/x"})
	if err != nil || hit {
		t.Fatalf("first FromFiles() = %v, hit %v", err, hit)
	}
	l2, hit, err := s.FromFiles(t.Context(), files, Spec{Dest: "/x"})
	if err != nil || !hit || l2.Desc != l1.Desc {
		t.Fatalf("second FromFiles() = %v, hit %v, %v vs %v", err, hit, l2.Desc, l1.Desc)
	}
	write(t, root, "f", "two", 0o644)
	files, _ = Collect(root, nil, nil)
	l3, hit, err := s.FromFiles(t.Context(), files, Spec{Dest: "/x"})
	if err != nil || hit || l3.Desc.Digest == l1.Desc.Digest {
		t.Fatalf("changed FromFiles() = %v, hit %v, same digest %v", err, hit, l3.Desc.Digest == l1.Desc.Digest)
	}
	// A removed blob is a miss, not a broken layer.
	os.Remove(s.blobPath(l3.Desc.Digest))
	if _, hit, err := s.FromFiles(t.Context(), files, Spec{Dest: "/x"}); err != nil || hit {
		t.Fatalf("FromFiles() after blob removal = %v, hit %v", err, hit)
	}
}

func TestDockerignore(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"main.go", "docs/a.md", "docs/keep.md", "logs/x.log", ".env", ".env.local", ".git/HEAD", "sub/.env", "README.md", ".packer/oci/index.json", ".env.example"} {
		write(t, root, f, "x", 0o644)
	}
	write(t, root, ".dockerignore", "# comment\n*.md\ndocs\n!docs/keep.md\nlogs/\n!.env.example\n", 0o644)
	ig, err := LoadIgnore(root, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := Collect(root, ig, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, f := range files {
		got = append(got, f.Rel)
	}
	// Docker semantics: `!` re-includes inside an excluded directory,
	// later patterns win; the default .env excludes hold at any depth.
	want := []string{".dockerignore", ".env.example", "docs/keep.md", "main.go", "sub"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Collect() = %q, want %q", got, want)
	}
}

func TestSecretFilesAtAnyDepth(t *testing.T) {
	const key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
	const cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	root := t.TempDir()
	secrets := map[string]string{
		"templates/.env":                "DB_PASSWORD=hunter22",
		"templates/.env.local":          "X=1",
		"templates/.env.example":        "DB_PASSWORD=",
		"templates/.git/HEAD":           "ref: refs/heads/main",
		"templates/id_rsa":              key,
		"templates/id_ed25519":          key,
		"templates/id_ecdsa.pub":        "ecdsa-sha2-nistp256 AAAA",
		"templates/.ssh/id_rsa":         key,
		"templates/server.pem":          cert + "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n",
		"templates/tls.key":             "-----BEGIN EC PRIVATE KEY-----\nMHc\n-----END EC PRIVATE KEY-----\n",
		"templates/.npmrc":              "//registry.example/:_authToken=npm_abcdefgh\n",
		"templates/.aws/credentials":    "[default]\naws_secret_access_key = abc\n",
		"templates/.netrc":              "machine example.com login u password p\n",
		"templates/.dockercfg":          "{}",
		"templates/.docker/config.json": `{"auths":{}}`,
		"templates/.pypirc":             "[pypi]\nusername = __token__\npassword = pypi-abc\n",
		".env":                          "A=1",
		".git/HEAD":                     "ref: refs/heads/main",
		"node_modules/dep/.env":         "packaged fixture",
	}
	kept := map[string]string{
		"templates/index.html":         "<p>hi</p>",
		"templates/ca.pem":             cert, // a certificate, no key
		"templates/public.key":         "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
		"templates/.npmrc.d/x":         "y",
		"sub/.npmrc":                   "engine-strict=true\n", // settings, no token
		"sub/.pypirc":                  "[distutils]\nindex-servers = pypi\n",
		"templates/environment.js":     "x",
		"templates/docker/config.json": "{}", // not .docker
	}
	for f, c := range secrets {
		write(t, root, f, c, 0o644)
	}
	for f, c := range kept {
		write(t, root, f, c, 0o644)
	}
	collect := func(dockerignore string) (map[string]bool, []SecretFile) {
		t.Helper()
		write(t, root, ".dockerignore", dockerignore, 0o644)
		ig, err := LoadIgnore(root, []string{"node_modules"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		files, err := Collect(root, ig, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]bool{}
		for _, f := range files {
			got[f.Rel] = true
		}
		return got, ig.Secrets()
	}

	got, found := collect("")
	for f := range secrets {
		if got[f] {
			t.Errorf("Collect() ships %s, a secret file", f)
		}
	}
	for f := range kept {
		if !got[f] {
			t.Errorf("Collect() leaves out %s, which holds no secret", f)
		}
	}
	named := map[string]SecretFile{}
	for _, s := range found {
		named[s.Rel] = s
	}
	for f := range secrets {
		if dir, _, ok := strings.Cut(f, "/.git/"); ok {
			f = dir + "/.git" // named once, as the directory
		}
		if strings.HasPrefix(f, ".git/") || strings.HasPrefix(f, "node_modules/") {
			continue // the root .git is expected; node_modules is the provider's
		}
		s, ok := named[f]
		if !ok || s.Shipped || s.Reason == "" {
			t.Errorf("Secrets() has %s = %+v, %v; want it named as left out", f, s, ok)
		}
	}
	if _, ok := named["node_modules/dep/.env"]; ok {
		t.Errorf("Secrets() names node_modules/dep/.env, which the provider's own exclude leaves out")
	}

	// `!` brings one back, and it is reported as shipped.
	got, found = collect("!templates/.env.example\n!templates/server.pem\n")
	if !got["templates/.env.example"] || !got["templates/server.pem"] || got["templates/.env"] || got["templates/tls.key"] {
		t.Errorf("with ! patterns: .env.example %v, server.pem %v, .env %v, tls.key %v; want only the first two", got["templates/.env.example"], got["templates/server.pem"], got["templates/.env"], got["templates/tls.key"])
	}
	shipped := map[string]bool{}
	for _, s := range found {
		if s.Shipped {
			shipped[s.Rel] = true
		}
	}
	if !shipped["templates/.env.example"] || !shipped["templates/server.pem"] || len(shipped) != 2 {
		t.Errorf("Secrets() shipped = %v, want the two re-included files", shipped)
	}
}

func TestSymlinks(t *testing.T) {
	root := t.TempDir()
	write(t, root, "a/f", "x", 0o644)
	os.Symlink("../a/f", filepath.Join(root, "a/up"))
	os.Symlink(filepath.Join(root, "a", "f"), filepath.Join(root, "abs-inside"))
	files, err := Collect(root, nil, nil)
	if err != nil {
		t.Fatalf("Collect() = %v", err)
	}
	links := map[string]string{}
	for _, f := range files {
		if f.Link != "" {
			links[f.Rel] = f.Link
		}
	}
	if links["abs-inside"] != "a/f" || links["a/up"] != "../a/f" {
		t.Errorf("links = %v", links)
	}

	for _, target := range []string{"../../etc/passwd", "/etc/passwd"} {
		bad := t.TempDir()
		write(t, bad, "ok", "x", 0o644)
		os.Symlink(target, filepath.Join(bad, "escape"))
		_, err := Collect(bad, nil, nil)
		if !errors.Is(err, ErrEscapingSymlink) {
			t.Errorf("Collect() with link to %s = %v, want ErrEscapingSymlink", target, err)
		}
	}
}

func TestUnreadableFile(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file; the CLI end-to-end test covers this as an unprivileged user")
	}
	root := t.TempDir()
	write(t, root, "secret", "x", 0o000)
	_, err := Collect(root, nil, nil)
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("permission denied")) {
		t.Errorf("Collect() = %v, want a permission error", err)
	}
}

func TestParseOwner(t *testing.T) {
	for _, tc := range []struct {
		in       string
		uid, gid int
		ok       bool
	}{{"", 0, 0, true}, {"65532:65532", 65532, 65532, true}, {"10", 10, 10, true}, {"app:app", 0, 0, false}, {"-1:0", 0, 0, false}} {
		u, g, err := ParseOwner(tc.in)
		if (err == nil) != tc.ok || u != tc.uid || g != tc.gid {
			t.Errorf("ParseOwner(%q) = %d, %d, %v", tc.in, u, g, err)
		}
	}
}

func TestTeeReadsTheLayersTar(t *testing.T) {
	root := t.TempDir()
	write(t, root, "f", strings.Repeat("some bytes ", 1<<16), 0o644)
	s, _ := NewStore(t.TempDir())
	var got []Descriptor
	var read []byte
	s.Tee = func(r io.Reader) func(Descriptor) {
		b, err := io.ReadAll(r)
		if err != nil {
			t.Errorf("Tee read: %v", err)
		}
		read = b
		return func(d Descriptor) { got = append(got, d) }
	}
	files, _ := Collect(root, nil, nil)
	l, _, err := s.FromFiles(t.Context(), files, Spec{Dest: "/x"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != l.Desc {
		t.Fatalf("Tee callback got %v, want once with %v", got, l.Desc)
	}
	h := sha256.New()
	h.Write(read)
	if d := hashOf(h); d != l.Desc.DiffID {
		t.Errorf("Tee read %d bytes with digest %s; the layer's diffID is %s", len(read), d, l.Desc.DiffID)
	}

	// A Tee that stops early is drained; a failed write calls no callback.
	s.Tee = func(r io.Reader) func(Descriptor) {
		_, _ = r.Read(make([]byte, 10))
		return func(d Descriptor) { got = append(got, d) }
	}
	_, err = s.Write(t.Context(), func(w io.Writer) error {
		if _, err := w.Write(make([]byte, 4<<20)); err != nil {
			return err
		}
		return errors.New("broken")
	})
	if err == nil || len(got) != 1 {
		t.Fatalf("failed Write() = %v, callbacks %d (want an error and none)", err, len(got)-1)
	}
}

// Uncompressed reads a layer from elsewhere, gzip or zstd or plain, as
// the tar its diffID names.
func TestUncompressedAnyLayer(t *testing.T) {
	var tarball bytes.Buffer
	if err := WriteEntries(&tarball, []Entry{{Name: "/etc/hostname", Mode: 0o644, Data: []byte("x\n")}}); err != nil {
		t.Fatal(err)
	}
	raw := tarball.Bytes()
	for _, c := range []struct {
		name string
		l    func() (v1.Layer, error)
	}{
		{"gzip", func() (v1.Layer, error) { return ggcrtarball.LayerFromReader(bytes.NewReader(raw)) }},
		{"zstd", func() (v1.Layer, error) {
			return ggcrtarball.LayerFromReader(bytes.NewReader(raw), ggcrtarball.WithCompression("zstd"))
		}},
		{"plain", func() (v1.Layer, error) { return static.NewLayer(raw, types.OCIUncompressedLayer), nil }},
	} {
		l, err := c.l()
		if err != nil {
			t.Fatal(err)
		}
		rc, err := Uncompressed(l)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("%s: read %d bytes (%v), want the %d-byte tar", c.name, len(got), err, len(raw))
		}
	}
}
