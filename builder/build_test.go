package builder_test

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/detect/builtin"
	"github.com/packer-build/packer/internal/testutil"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/plan"
)

var amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

func planFor(t *testing.T, dir string) *plan.Plan {
	t.Helper()
	p, err := detect.Run(context.Background(), os.DirFS(dir), detect.Options{}, builtin.Providers(), "")
	if err != nil {
		t.Fatalf("detect.Run() = %v", err)
	}
	return p
}

type buildOut struct {
	res    builder.Result
	report *builder.Report
	log    string
}

func doBuild(t *testing.T, dir, cache string, opts builder.Options) buildOut {
	t.Helper()
	testutil.NeedTool(t, "go", "install Go")
	store, err := layers.NewStore(cache)
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	opts.Store, opts.Log, opts.Version = store, &log, "test"
	if opts.Platforms == nil {
		opts.Platforms = []v1.Platform{amd64}
	}
	res, rep, err := builder.Build(context.Background(), dir, planFor(t, dir), opts)
	if err != nil {
		t.Fatalf("Build() = %v\nlog:\n%s", err, log.String())
	}
	return buildOut{res.Result, rep, log.String()}
}

func digest(t *testing.T, r interface{ Digest() (v1.Hash, error) }) string {
	t.Helper()
	d, err := r.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

func layerDigests(t *testing.T, img v1.Image) []string {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range ls {
		out = append(out, digest(t, l))
	}
	return out
}

func TestReproducibleAcrossDirectoriesAndMtimes(t *testing.T) {
	a := testutil.CopyFixture(t, "go-server")
	b := testutil.CopyFixture(t, "go-server")
	// Different mtimes on every file of the second copy.
	filepath.Walk(b, func(p string, _ os.FileInfo, _ error) error {
		return os.Chtimes(p, time.Now(), time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC))
	})
	created := time.Unix(1700000000, 0).UTC()
	// Separate caches, so the second build really runs go build again.
	ra := doBuild(t, a, t.TempDir(), builder.Options{Created: created})
	rb := doBuild(t, b, t.TempDir(), builder.Options{Created: created})
	if ra.report.StepsRun != 1 || rb.report.StepsRun != 1 {
		t.Fatalf("steps run = %d, %d; want both builds to run the build step", ra.report.StepsRun, rb.report.StepsRun)
	}
	if da, db := digest(t, ra.res), digest(t, rb.res); da != db {
		t.Errorf("manifest digests differ between copies: %s vs %s", da, db)
	}
	img := ra.res.(v1.Image)
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image() = %v", err)
	}

	t.Run("another SOURCE_DATE_EPOCH", func(t *testing.T) {
		rc := doBuild(t, a, t.TempDir(), builder.Options{Created: created.Add(time.Hour)})
		imgC := rc.res.(v1.Image)
		if got, want := strings.Join(layerDigests(t, imgC), ","), strings.Join(layerDigests(t, img), ","); got != want {
			t.Errorf("layer digests moved with the creation time:\n%s\n%s", got, want)
		}
		ca, _ := img.ConfigName()
		cc, _ := imgC.ConfigName()
		if ca == cc {
			t.Errorf("config digest %s did not change with the creation time", ca)
		}
		cfg, _ := imgC.ConfigFile()
		if !cfg.Created.Time.Equal(created.Add(time.Hour)) {
			t.Errorf("created = %v", cfg.Created)
		}
	})
}

func TestImageConfig(t *testing.T) {
	dir := testutil.CopyFixture(t, "go-server")
	out := doBuild(t, dir, t.TempDir(), builder.Options{Created: time.Unix(0, 0), Labels: map[string]string{"org.opencontainers.image.revision": "abc"}})
	img := out.res.(v1.Image)
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.Config
	if c.User != "65532:65532" || c.WorkingDir != "/app" || strings.Join(c.Entrypoint, " ") != "/app/hello-server" {
		t.Errorf("user %q workdir %q entrypoint %q", c.User, c.WorkingDir, c.Entrypoint)
	}
	if _, ok := c.ExposedPorts["8080/tcp"]; !ok {
		t.Errorf("exposed ports = %v", c.ExposedPorts)
	}
	wantEnv := []string{"HOME=/home/nonroot", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "PORT=8080"}
	if strings.Join(c.Env, " ") != strings.Join(wantEnv, " ") {
		t.Errorf("env = %q, want %q (sorted)", c.Env, wantEnv)
	}
	if c.Labels["org.opencontainers.image.revision"] != "abc" {
		t.Errorf("labels = %v", c.Labels)
	}
	m, _ := img.Manifest()
	if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Config.MediaType != "application/vnd.oci.image.config.v1+json" {
		t.Errorf("media types %s / %s, want OCI", m.MediaType, m.Config.MediaType)
	}
	for _, l := range m.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
			t.Errorf("layer media type %s", l.MediaType)
		}
	}
	files := testutil.ImageFiles(t, img)
	for name, want := range map[string]string{
		"etc/passwd":                        "nonroot:x:65532:65532:",
		"etc/group":                         "nonroot:x:65532:",
		"etc/ssl/certs/ca-certificates.crt": "-----BEGIN CERTIFICATE-----",
		"app/templates/index.html":          "{{.Greeting}}",
	} {
		if !strings.Contains(string(files[name].Data), want) {
			t.Errorf("/%s does not contain %q", name, want)
		}
	}
	if h := files["app/hello-server"].Header; h == nil || h.Mode != 0o755 || h.Uid != 0 {
		t.Errorf("binary header = %+v, want root-owned 0755", h)
	}
	if h := files["tmp/"].Header; h == nil || h.Mode != 0o1777 {
		t.Errorf("/tmp header = %+v", h)
	}
	if h := files["home/nonroot/"].Header; h == nil || h.Uid != 65532 {
		t.Errorf("/home/nonroot header = %+v", h)
	}
	if _, ok := files["app/README.md"]; ok {
		t.Errorf(".dockerignore'd README.md is in the image")
	}
}

func TestRebuilds(t *testing.T) {
	dir := testutil.CopyFixture(t, "go-server")
	cache := t.TempDir()
	first := doBuild(t, dir, cache, builder.Options{})
	same := doBuild(t, dir, cache, builder.Options{})
	if same.report.StepsRun != 0 || same.report.StepsCached != 1 || !strings.Contains(same.log, "inputs unchanged, skipped") {
		t.Errorf("no-change rebuild ran %d steps (cached %d); log:\n%s", same.report.StepsRun, same.report.StepsCached, same.log)
	}
	if digest(t, same.res) != digest(t, first.res) {
		t.Errorf("no-change rebuild changed the digest")
	}

	main := filepath.Join(dir, "main.go")
	src, _ := os.ReadFile(main)
	os.WriteFile(main, bytes.Replace(src, []byte("hello from packer"), []byte("hello again"), 1), 0o644)
	changed := doBuild(t, dir, cache, builder.Options{})
	if changed.report.StepsRun != 1 {
		t.Errorf("after editing main.go the build step ran %d times", changed.report.StepsRun)
	}
	before, after := layerDigests(t, first.res.(v1.Image)), layerDigests(t, changed.res.(v1.Image))
	if len(before) != 3 || len(after) != 3 {
		t.Fatalf("layers = %d, %d; want base, files, app", len(before), len(after))
	}
	if before[0] != after[0] || before[1] != after[1] {
		t.Errorf("base or files layer changed after a .go edit")
	}
	if before[2] == after[2] {
		t.Errorf("app layer did not change after a .go edit")
	}
}

func TestMultiPlatformIndex(t *testing.T) {
	dir := testutil.CopyFixture(t, "go-server")
	arm64 := v1.Platform{OS: "linux", Architecture: "arm64"}
	out := doBuild(t, dir, t.TempDir(), builder.Options{Platforms: []v1.Platform{amd64, arm64}})
	idx, ok := out.res.(v1.ImageIndex)
	if !ok {
		t.Fatalf("result is %T, want an index", out.res)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate.Index() = %v", err)
	}
	im, _ := idx.IndexManifest()
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	if len(im.Manifests) != 2 {
		t.Fatalf("index has %d manifests", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := img.ConfigFile()
		if cfg.Architecture != d.Platform.Architecture {
			t.Errorf("config arch %s under index platform %s", cfg.Architecture, d.Platform)
		}
		bin := testutil.ImageFiles(t, img)["app/hello-server"].Data
		f, err := elf.NewFile(bytes.NewReader(bin))
		if err != nil {
			t.Fatalf("%s binary is not ELF: %v", d.Platform, err)
		}
		if f.Machine != want[d.Platform.Architecture] {
			t.Errorf("%s binary machine = %v, want %v", d.Platform, f.Machine, want[d.Platform.Architecture])
		}
	}
}

func TestStepFailure(t *testing.T) {
	dir := testutil.CopyFixture(t, "go-server")
	os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\nfunc main() { undefined() }\n"), 0o644)
	testutil.NeedTool(t, "go", "install Go")
	store, _ := layers.NewStore(t.TempDir())
	var log bytes.Buffer
	_, _, err := builder.Build(context.Background(), dir, planFor(t, dir), builder.Options{Platforms: []v1.Platform{amd64}, Store: store, Log: &log})
	if err == nil || !strings.Contains(err.Error(), "step build failed") {
		t.Fatalf("Build() = %v", err)
	}
	if !strings.Contains(log.String(), "undefined: undefined") {
		t.Errorf("compiler output missing from the log:\n%s", log.String())
	}
	// The user's directory is untouched: no output dir appeared in it.
	if _, err := os.Stat(filepath.Join(dir, ".packer-out")); err == nil {
		t.Errorf("the build wrote into the user's directory")
	}
}

func TestConcurrentBuildsShareCache(t *testing.T) {
	testutil.NeedTool(t, "go", "install Go")
	dir := testutil.CopyFixture(t, "go-server")
	cache := t.TempDir()
	p := planFor(t, dir)
	type out struct {
		d   string
		err error
	}
	results := make(chan out, 3)
	for i := 0; i < 3; i++ {
		go func() {
			store, err := layers.NewStore(cache)
			if err != nil {
				results <- out{err: err}
				return
			}
			res, _, err := builder.Build(context.Background(), dir, p, builder.Options{Platforms: []v1.Platform{amd64}, Store: store, Version: "test"})
			if err != nil {
				results <- out{err: err}
				return
			}
			d, err := res.Digest()
			results <- out{d.String(), err}
		}()
	}
	var digests []string
	for i := 0; i < 3; i++ {
		r := <-results
		if r.err != nil {
			t.Fatalf("concurrent Build() = %v", r.err)
		}
		digests = append(digests, r.d)
	}
	if digests[0] != digests[1] || digests[1] != digests[2] {
		t.Errorf("concurrent builds gave different digests: %v", digests)
	}
	// Nothing half-written is left in the store.
	if ents, _ := os.ReadDir(filepath.Join(cache, "tmp")); len(ents) != 0 {
		t.Errorf("%d temp files left in the cache", len(ents))
	}
}

// fakeBase is a one-layer base with users; broken makes reading its layer
// fail.
func fakeBase(t *testing.T, broken bool) builder.BaseResolver {
	var buf bytes.Buffer
	if err := layers.WriteEntries(&buf, []layers.Entry{
		{Name: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{Name: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\n")},
		{Name: "/usr/share/doc/filler", Mode: 0o644, Data: bytes.Repeat([]byte("filler "), 1<<20)},
	}); err != nil {
		t.Fatal(err)
	}
	var l v1.Layer
	var err error
	if l, err = tarball.LayerFromReader(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if broken {
		l = brokenLayer{l}
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"}})
	if err != nil {
		t.Fatal(err)
	}
	return func(context.Context, string, v1.Platform) (v1.Image, *builder.BaseInfo, error) { return img, nil, nil }
}

type brokenLayer struct{ v1.Layer }

func (brokenLayer) Compressed() (io.ReadCloser, error) {
	return nil, errors.New("the registry hung up")
}

// A base read for the first time is read while the steps run on this
// machine; the image is the one a build with the base's facts already
// known makes. A base that cannot be read fails the build with that
// cause, not the steps'.
func TestStepsRunWhileTheBaseIsRead(t *testing.T) {
	testutil.NeedTool(t, "go", "install Go")
	dir := testutil.CopyFixture(t, "go-server")
	p := planFor(t, dir)
	p.Base = "registry.example/base:1"
	store, err := layers.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var rep *builder.Report
	build := func(resolve builder.BaseResolver, noCache bool) (string, string, error) {
		var log bytes.Buffer
		res, r, err := builder.Build(t.Context(), dir, p, builder.Options{
			Platforms: []v1.Platform{amd64}, Store: store, Log: &log, Version: "test", Created: time.Unix(0, 0),
			Resolve: resolve, NoCache: noCache,
		})
		if err != nil {
			return "", log.String(), err
		}
		rep = r
		return digest(t, res.Result), log.String(), nil
	}
	first, log, err := build(fakeBase(t, false), false)
	if err != nil {
		t.Fatalf("Build() = %v\n%s", err, log)
	}
	if !strings.Contains(log, "while the base's files are read") || !strings.Contains(log, "files read in") {
		t.Errorf("the first build did not run its steps while reading the base:\n%s", log)
	}
	again, log, err := build(fakeBase(t, false), true) // the facts are cached now; the steps run again
	if err != nil {
		t.Fatalf("second Build() = %v\n%s", err, log)
	}
	if strings.Contains(log, "while the base's files are read") || !strings.Contains(log, "step build") {
		t.Errorf("the second build read the base again or ran no step:\n%s", log)
	}
	if again != first {
		t.Errorf("digest %s with the steps run while the base was read, %s after", first, again)
	}
	system := false
	for _, l := range rep.Layers[amd64.String()] {
		if l.Name == "system" {
			system = true
			if !l.Cached {
				t.Errorf("the user layer, the same as the first build's, is reported new")
			}
		}
	}
	if !system {
		t.Errorf("no user layer: %+v", rep.Layers)
	}

	store, _ = layers.NewStore(t.TempDir())
	_, log, err = build(fakeBase(t, true), false)
	if err == nil || !strings.Contains(err.Error(), "reading the base image's files") || !strings.Contains(err.Error(), "the registry hung up") {
		t.Errorf("Build() on a base that cannot be read = %v, want the base's error\n%s", err, log)
	}
}
