package registry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
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
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/detect/builtin"
	"github.com/packer-build/packer/internal/testutil"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/oci"
	"github.com/packer-build/packer/publish"
	"github.com/packer-build/packer/registry"
	"github.com/packer-build/packer/sbom"
)

var amd64 = v1.Platform{OS: "linux", Architecture: "amd64"}

func newRegistry(t *testing.T) string {
	t.Helper()
	s := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL)
	return u.Host
}

// buildFixture builds the go-server fixture, optionally on base.
func buildFixture(t *testing.T, base string, c *registry.Client, platforms ...v1.Platform) builder.Result {
	t.Helper()
	testutil.NeedTool(t, "go", "install Go")
	dir := testutil.CopyFixture(t, "go-server")
	p, err := detect.Run(context.Background(), os.DirFS(dir), detect.Options{}, builtin.Providers(), "")
	if err != nil {
		t.Fatal(err)
	}
	if base != "" {
		p.Base = base
	}
	store, _ := layers.NewStore(t.TempDir())
	if len(platforms) == 0 {
		platforms = []v1.Platform{amd64}
	}
	var log bytes.Buffer
	res, _, err := builder.Build(context.Background(), dir, p, builder.Options{
		Platforms: platforms, Store: store, Created: time.Unix(0, 0), Resolve: c.Resolve, Log: &log,
	})
	if err != nil {
		t.Fatalf("Build() = %v\n%s", err, log.String())
	}
	return res.Result
}

func TestPushAndPullBack(t *testing.T) {
	host := newRegistry(t)
	c := &registry.Client{}
	res := buildFixture(t, "", c)
	var tags []name.Tag
	for _, s := range []string{host + "/team/hello:v1", host + "/team/hello:latest"} {
		tag, err := c.ParseTag(s)
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tag)
	}
	pushed, err := c.Push(context.Background(), res, tags, oci.Attachments{})
	if err != nil {
		t.Fatalf("Push() = %v", err)
	}
	want, _ := res.Digest()
	if len(pushed) != 1 || pushed[0].DigestStr() != want.String() {
		t.Fatalf("pushed %v, want one digest %s", pushed, want)
	}
	for _, tag := range tags {
		img, err := remote.Image(tag)
		if err != nil {
			t.Fatalf("pulling %s: %v", tag, err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("validate.Image(%s) = %v", tag, err)
		}
		if d, _ := img.Digest(); d != want {
			t.Errorf("%s has digest %s, want %s", tag, d, want)
		}
	}
}

func TestPushIndex(t *testing.T) {
	host := newRegistry(t)
	c := &registry.Client{}
	res := buildFixture(t, "", c, amd64, v1.Platform{OS: "linux", Architecture: "arm64"})
	tag, _ := c.ParseTag(host + "/multi:v1")
	if _, err := c.Push(context.Background(), res, []name.Tag{tag}, oci.Attachments{}); err != nil {
		t.Fatalf("Push() = %v", err)
	}
	idx, err := remote.Index(tag)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Errorf("validate.Index() = %v", err)
	}
}

func TestPushUnreachable(t *testing.T) {
	c := &registry.Client{}
	res := buildFixture(t, "", c)
	tag, _ := c.ParseTag("127.0.0.1:1/nothing:here")
	_, err := c.Push(context.Background(), res, []name.Tag{tag}, oci.Attachments{})
	if err == nil || !strings.Contains(err.Error(), "cannot reach registry 127.0.0.1:1") {
		t.Fatalf("Push() = %v", err)
	}
}

func TestBaseFromRegistryAndLayout(t *testing.T) {
	host := newRegistry(t)
	c := &registry.Client{}
	// A base with a root-only /etc/passwd, as many distro images have.
	var buf bytes.Buffer
	layers.WriteEntries(&buf, []layers.Entry{
		{Name: "/etc", Dir: true, Mode: 0o755},
		{Name: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\nwww:x:33:33::/var/www:/bin/sh\n")},
		{Name: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\n")},
	})
	l, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	base, _ := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{Env: []string{"PATH=/bin", "LANG=C.UTF-8"}, Cmd: []string{"/bin/sh"}}, RootFS: v1.RootFS{Type: "layers"}})
	base, _ = mutate.AppendLayers(base, l)
	baseRef := host + "/base/distro:1"
	bref, _ := name.ParseReference(baseRef)
	if err := remote.Write(bref, base); err != nil {
		t.Fatal(err)
	}
	baseDigest, _ := base.Digest()

	layoutDir := filepath.Join(t.TempDir(), "base-layout")
	if err := publish.WriteLayout(t.Context(), layoutDir, base, []string{"distro"}); err != nil {
		t.Fatal(err)
	}

	for _, ref := range []string{baseRef, "oci:" + layoutDir + ":distro", "oci:" + layoutDir} {
		t.Run(ref, func(t *testing.T) {
			res := buildFixture(t, ref, c)
			img := res.(v1.Image)
			if err := validate.Image(img); err != nil {
				t.Fatalf("validate.Image() = %v", err)
			}
			m, _ := img.Manifest()
			if m.Annotations["org.opencontainers.image.base.digest"] != baseDigest.String() {
				t.Errorf("base digest annotation = %q, want %s", m.Annotations["org.opencontainers.image.base.digest"], baseDigest)
			}
			if strings.HasPrefix(ref, "oci:") && strings.Contains(m.Annotations["org.opencontainers.image.base.name"], layoutDir) {
				t.Errorf("base name records a machine path: %q", m.Annotations["org.opencontainers.image.base.name"])
			}
			cfg, _ := img.ConfigFile()
			if cfg.Config.Cmd != nil {
				t.Errorf("base CMD %v survived a new ENTRYPOINT", cfg.Config.Cmd)
			}
			if !strings.Contains(strings.Join(cfg.Config.Env, " "), "LANG=C.UTF-8") {
				t.Errorf("base env lost: %v", cfg.Config.Env)
			}
			ls, _ := img.Layers()
			if len(ls) != 4 { // base, system (nonroot user), files, app
				t.Fatalf("%d layers, want base + system + files + app", len(ls))
			}
			rc, _ := ls[1].Uncompressed()
			var sys bytes.Buffer
			sys.ReadFrom(rc)
			if !strings.Contains(sys.String(), "www:x:33:33") || !strings.Contains(sys.String(), "nonroot:x:65532:65532") {
				t.Errorf("system layer does not extend the base's passwd:\n%q", sys.String())
			}
		})
	}

	t.Run("missing", func(t *testing.T) {
		_, _, err := c.Resolve(context.Background(), host+"/base/nope:1", amd64)
		if err == nil || !strings.Contains(err.Error(), "not found") {
			t.Errorf("Resolve(missing) = %v", err)
		}
		_, _, err = c.Resolve(context.Background(), "oci:"+layoutDir+":other", amd64)
		if err == nil || !strings.Contains(err.Error(), `no image tagged "other"`) {
			t.Errorf("Resolve(missing layout tag) = %v", err)
		}
		_, _, err = c.Resolve(context.Background(), baseRef, v1.Platform{OS: "linux", Architecture: "arm64"})
		if err == nil || !strings.Contains(err.Error(), "is for linux/amd64, not linux/arm64") {
			t.Errorf("Resolve(wrong platform) = %v", err)
		}
	})
}

// Registry errors keep go-containerregistry's *transport.Error reachable
// behind their explanation.
func TestErrorsKeepTransportError(t *testing.T) {
	host := newRegistry(t)
	c := &registry.Client{}
	_, _, err := c.Resolve(t.Context(), host+"/no/such:image", amd64)
	var terr *transport.Error
	if !errors.As(err, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Fatalf("Resolve(missing) = %v, want a *transport.Error with 404 inside", err)
	}
	if !strings.Contains(err.Error(), "not found on") {
		t.Errorf("Resolve(missing) = %v, want the explanation", err)
	}
}

// An image pushed before without its SBOM (a rebuild with no change, the
// SBOM turned on since) gets the SBOM's manifest and blobs, and a new
// tag, on the next push, though the image's own upload is skipped.
func TestPushAddsReferrersToAnImageAlreadyThere(t *testing.T) {
	host := newRegistry(t)
	c := &registry.Client{}
	res := buildFixture(t, "", c)
	tag, err := c.ParseTag(host + "/team/hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(t.Context(), res, []name.Tag{tag}, oci.Attachments{}); err != nil {
		t.Fatal(err)
	}
	img := res.(v1.Image)
	desc, err := partial.Descriptor(img)
	if err != nil {
		t.Fatal(err)
	}
	doc := []byte(`{"spdxVersion":"SPDX-2.3"}`)
	art, err := sbom.Artifact(*desc, sbom.SPDXType, []sbom.File{{Name: "sbom.spdx.json", Data: doc}}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	tag2, err := c.ParseTag(host + "/team/hello:v2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Push(t.Context(), res, []name.Tag{tag, tag2}, oci.Attachments{Referrers: []v1.Image{art}}); err != nil {
		t.Fatalf("second Push() = %v", err)
	}
	for _, tg := range []name.Tag{tag, tag2} {
		if d, err := remote.Head(tg); err != nil || d.Digest != desc.Digest {
			t.Errorf("%s = %v (%v), want %s", tg, d, err, desc.Digest)
		}
	}
	idx, err := remote.Referrers(tag.Context().Digest(desc.Digest.String()))
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	ad, _ := art.Digest()
	if len(im.Manifests) != 1 || im.Manifests[0].Digest != ad {
		t.Fatalf("referrers = %+v, want the SBOM artifact %s", im.Manifests, ad)
	}
	pulled, err := remote.Image(tag.Context().Digest(ad.String()))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Errorf("the SBOM artifact in the registry: %v", err)
	}
}
