package pipeline_test

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/packer-build/packer/buildargs"
	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/pipeline"
	"github.com/packer-build/packer/plan"
	"github.com/packer-build/packer/publish"
	"github.com/packer-build/packer/registry"
)

// writer is an Executor whose one step writes a file (and, when asked,
// copies the secret into its output).
type writer struct{ leak bool }

func (writer) Probe(context.Context, builder.Probe) (string, error) { return "", nil }
func (w writer) Run(_ context.Context, r builder.StepRun) error {
	out := filepath.Join(r.Dir, "out")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	content := "built"
	if w.leak {
		for _, kv := range r.SecretEnv {
			if v, ok := strings.CutPrefix(kv, "TOKEN="); ok {
				content = v
			}
		}
	}
	return os.WriteFile(filepath.Join(out, "app.txt"), []byte(content), 0o644)
}

func request(t *testing.T, pubs []publish.Publisher, exec builder.Executor, secrets buildargs.Secrets) pipeline.Request {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "index.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	store, err := layers.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return pipeline.Request{
		Dir: dir,
		Plan: &plan.Plan{Provider: "test", Base: plan.BaseStatic, User: plan.NonRootUser, WorkingDir: plan.AppDir,
			Entrypoint: []string{"/app/app.txt"},
			Steps:      []plan.Step{{Name: "build", Run: []string{"build"}, Output: "out"}},
			Layers:     []plan.Layer{{Name: "app", From: "build", Dest: plan.AppDir}}},
		Platforms:  []v1.Platform{{OS: "linux", Architecture: "amd64"}},
		Secrets:    secrets,
		Publishers: pubs,
		SBOM:       pipeline.SBOMOptions{Formats: []string{"spdx"}, Name: "app"},
		Created:    time.Unix(1700000000, 0).UTC(),
		Store:      store,
		Version:    "test",
		Executor:   exec,
	}
}

func TestRunPublishesEverywhere(t *testing.T) {
	s := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)), ggcrregistry.WithReferrersSupport(true)))
	defer s.Close()
	u, _ := url.Parse(s.URL)
	tag, err := name.NewTag(u.Host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	pubs := []publish.Publisher{&publish.Layout{Dir: dir, Tags: []string{"v1"}}, &publish.Remote{Client: &registry.Client{}, Tags: []name.Tag{tag}}}
	res, err := pipeline.Run(t.Context(), request(t, pubs, writer{}, nil))
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	if len(res.Published) != 2 || len(res.Published[1].Refs) != 1 || res.Published[1].Refs[0].DigestStr() != res.Digest.String() {
		t.Fatalf("Published = %+v, want the layout and one pushed digest %s", res.Published, res.Digest)
	}
	if len(res.SBOMs[res.Digest]["spdx"]) == 0 {
		t.Errorf("no SPDX document for %s", res.Digest)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	refs, err := publish.LayoutReferrers(dir)
	if len(im.Manifests) != 1 || err != nil || len(refs) != 1 { // the image (tagged v1); its SBOM in the referrers index
		t.Errorf("layout holds %d manifests and %d referrers (%v), want the image and its SBOM", len(im.Manifests), len(refs), err)
	}
	desc, err := remote.Head(tag)
	if err != nil || desc.Digest != res.Digest {
		t.Errorf("registry has %v (%v) at v1, want %s", desc, err, res.Digest)
	}
}

func TestRunPublishesNothingOnALeak(t *testing.T) {
	secret, err := buildargs.ParseSecret("id=TOKEN,env=T", func(string) (string, bool) { return "s3cr3t-canary-value", true })
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	_, err = pipeline.Run(t.Context(), request(t, []publish.Publisher{&publish.Layout{Dir: dir}}, writer{leak: true}, buildargs.Secrets{secret}))
	var leak *buildargs.LeakError
	if !errors.As(err, &leak) || leak.Secret != "TOKEN" {
		t.Fatalf("Run() = %v, want a leak of TOKEN", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("a layout was written although a secret leaked")
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancelCause(t.Context())
	cause := errors.New("interrupted by SIGTERM")
	cancel(cause)
	dir := filepath.Join(t.TempDir(), "layout")
	_, err := pipeline.Run(ctx, request(t, []publish.Publisher{&publish.Layout{Dir: dir}}, writer{}, nil))
	if !errors.Is(err, cause) {
		t.Fatalf("Run(cancelled) = %v, want the cause", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("a layout was written after cancellation")
	}
}

func TestRunChecksPublishersFirst(t *testing.T) {
	req := request(t, []publish.Publisher{&publish.Tarball{File: filepath.Join(t.TempDir(), "x.tar")}}, writer{}, nil)
	if _, err := pipeline.Run(t.Context(), req); err == nil || !strings.Contains(err.Error(), "needs a name") {
		t.Fatalf("Run(tarball without tag) = %v", err)
	}
}
