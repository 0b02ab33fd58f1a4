package publish

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/packer-build/packer/registry"
	"github.com/packer-build/packer/sbom"
)

func TestParse(t *testing.T) {
	tag, _ := name.NewTag("reg.example/app:v1")
	target := Target{Client: &registry.Client{}, Tags: []name.Tag{tag}, DefaultLayout: filepath.Join("app", ".packer/oci")}
	pubs, err := Parse(nil, false, target)
	if err != nil || len(pubs) != 1 || pubs[0].String() != "oci:"+filepath.Join("app", ".packer/oci") {
		t.Errorf("Parse(nil) = %v, %v; want the default layout", pubs, err)
	}
	pubs, err = Parse([]string{"oci:a", "tar:b.tar"}, true, target)
	if err != nil || len(pubs) != 3 || pubs[0].String() != "oci:a" || pubs[1].String() != "tar:b.tar" || pubs[2].String() != "registry" {
		t.Errorf("Parse(oci, tar, push) = %v, %v", pubs, err)
	}
	if !Pushes(pubs) || Pushes(pubs[:2]) {
		t.Errorf("Pushes() is wrong for %v", pubs)
	}
	if l, ok := pubs[0].(*Layout); !ok || len(l.Tags) != 1 || l.Tags[0] != "v1" {
		t.Errorf("layout = %#v, want tagged v1", pubs[0])
	}
	for _, bad := range []string{"oci:", "docker", "zip:x"} {
		if _, err := Parse([]string{bad}, false, target); err == nil {
			t.Errorf("Parse(%q) succeeded", bad)
		}
	}
	if err := (&Tarball{File: "x.tar", Tags: target.Tags}).Check(2); err == nil {
		t.Errorf("a tarball accepted two platforms")
	}
	if err := (&Tarball{File: "x.tar"}).Check(1); err == nil {
		t.Errorf("a tarball accepted no tag")
	}
	if err := (&Remote{}).Check(1); err == nil {
		t.Errorf("a push accepted no tag")
	}
	notLayout := t.TempDir()
	os.WriteFile(filepath.Join(notLayout, "x"), []byte("x"), 0o644)
	if err := (&Layout{Dir: notLayout}).Check(1); err == nil {
		t.Errorf("a layout accepted a non-empty directory that is no layout")
	}
}

func TestLayoutAndTarball(t *testing.T) {
	res, err := random.Image(1024, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := res.Digest()
	dir := filepath.Join(t.TempDir(), "out")
	if err := WriteLayout(t.Context(), dir, res, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	// Writing again with another tag adds it; the same tag is replaced.
	if err := WriteLayout(t.Context(), dir, res, []string{"v1", "v2"}); err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	if len(im.Manifests) != 2 {
		t.Fatalf("index.json has %d entries, want v1 and v2", len(im.Manifests))
	}
	for _, d := range im.Manifests {
		if d.Digest != want {
			t.Errorf("%s → %s, want %s", d.Annotations["org.opencontainers.image.ref.name"], d.Digest, want)
		}
		img, _ := idx.Image(d.Digest)
		if err := validate.Image(img); err != nil {
			t.Errorf("validate.Image() = %v", err)
		}
	}

	notLayout := t.TempDir()
	os.WriteFile(filepath.Join(notLayout, "precious.txt"), []byte("keep"), 0o644)
	if err := WriteLayout(t.Context(), notLayout, res, nil); err == nil {
		t.Errorf("WriteLayout into a non-layout directory succeeded")
	}
	if b, _ := os.ReadFile(filepath.Join(notLayout, "precious.txt")); string(b) != "keep" {
		t.Errorf("user file modified")
	}

	tarPath := filepath.Join(t.TempDir(), "img.tar")
	tag, _ := name.NewTag("hello:v1")
	if err := WriteTarball(t.Context(), tarPath, res, []name.Tag{tag}); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(tarPath, &tag)
	if err != nil {
		t.Fatalf("reading the docker-archive back: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image(tarball) = %v", err)
	}
	cn, _ := img.ConfigName()
	wantCN, _ := res.ConfigName()
	if cn != wantCN {
		t.Errorf("tarball config %s, want %s", cn, wantCN)
	}
}

func TestLayoutReferrersFollowTheirImage(t *testing.T) {
	mk := func(seed string) (v1.Image, v1.Image) {
		img, _ := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{Env: []string{"SEED=" + seed}}, RootFS: v1.RootFS{Type: "layers"}})
		d, _ := partial.Descriptor(img)
		ref, err := sbom.Artifact(*d, sbom.SPDXType, []sbom.File{{Name: "sbom.spdx.json", Data: []byte(`{"seed":"` + seed + `"}`)}}, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		return img, ref
	}
	dir := filepath.Join(t.TempDir(), "layout")
	a, ra := mk("a")
	b, rb := mk("b")
	if err := WriteLayout(t.Context(), dir, a, []string{"v1", "keep"}, ra); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(t.Context(), dir, b, []string{"v1"}, rb); err != nil {
		t.Fatal(err)
	}
	entries := 0
	digests := func() map[string]string {
		idx, _ := layout.ImageIndexFromPath(dir)
		im, _ := idx.IndexManifest()
		entries = len(im.Manifests)
		out := map[string]string{}
		for _, d := range im.Manifests {
			out[d.Digest.String()] += d.Annotations["org.opencontainers.image.ref.name"] + "|" + d.ArtifactType + ";"
		}
		refs, err := LayoutReferrers(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range refs {
			out[d.Digest.String()] += "|" + d.ArtifactType + ";"
		}
		return out
	}
	got := digests()
	dra, _ := ra.Digest()
	if _, ok := got[dra.String()]; !ok {
		t.Errorf("a's SBOM was dropped while tag keep still points at a: %v", got)
	}
	// Retag keep too: now a has no tag and its SBOM goes.
	if err := WriteLayout(t.Context(), dir, b, []string{"keep"}, rb); err != nil {
		t.Fatal(err)
	}
	got = digests()
	if _, ok := got[dra.String()]; ok {
		t.Errorf("a's SBOM stayed after a lost its tags: %v", got)
	}
	drb, _ := rb.Digest()
	if got[drb.String()] != "|application/spdx+json;" || entries != 2 {
		t.Errorf("index = %v (%d entries), want b (v1, keep) in index.json and its SBOM in the referrers index", got, entries)
	}
}

// TestParseBuildxOutputs: docker buildx's --output forms map to packer's
// publishers; the ones packer cannot honour say what to use instead.
func TestParseBuildxOutputs(t *testing.T) {
	for _, tc := range []struct {
		spec, want, wantErr string
	}{
		{"type=oci,dest=out", "oci:out", ""},
		{"type=oci,dest=out/image.tar", "oci-archive:out/image.tar", ""},
		{"oci-archive:img.tar", "oci-archive:img.tar", ""},
		{"type=docker,dest=img.tar", "tar:img.tar", ""},
		{"type=registry", "registry", ""},
		{"type=image,push=true", "registry", ""},
		{"type=image", "", "add push=true"},
		{"type=docker", "daemon " + DaemonHost(), ""},
		{"type=local,dest=rootfs", "", "not a root file system"},
		{"type=oci", "", "needs dest=DIR"},
		{"type=registry,name=r/app:v1", "", "-t r/app:v1"},
		{"type=oci,dest=x,frobnicate=1", "", "does not know frobnicate="},
		{"type=cacheonly", "", "type=cacheonly is not one packer writes"},
	} {
		pubs, err := Parse([]string{tc.spec}, false, Target{Tags: []name.Tag{name.MustParseReference("r/app:v1").(name.Tag)}})
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: %v, want an error with %q", tc.spec, err, tc.wantErr)
			}
			continue
		}
		if err != nil || len(pubs) != 1 || pubs[0].String() != tc.want {
			t.Errorf("%s: %v %v, want %s", tc.spec, pubs, err, tc.want)
		}
	}
}

// TestLayoutRebuildDropsUnusedBlobs: writing a new image under a tag of an
// existing layout removes the old image's blobs, unless another tag still
// holds that image.
func TestLayoutRebuildDropsUnusedBlobs(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	a, _ := random.Image(2048, 2)
	b, _ := random.Image(2048, 2)
	c, _ := random.Image(2048, 2)
	blobCount := func() int {
		ents, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
		return len(ents)
	}
	has := func(img v1.Image) bool {
		ls, _ := img.Layers()
		for _, l := range ls {
			d, _ := l.Digest()
			if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", d.Hex)); err != nil {
				return false
			}
		}
		return true
	}
	ctx := context.Background()
	if err := WriteLayout(ctx, dir, a, []string{"v1", "keep"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteLayout(ctx, dir, b, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	if !has(a) || !has(b) {
		t.Fatalf("an image still tagged lost its blobs")
	}
	n := blobCount()
	if err := WriteLayout(ctx, dir, c, []string{"v1"}); err != nil {
		t.Fatal(err)
	}
	if has(b) || !has(c) || !has(a) || blobCount() != n {
		t.Errorf("after replacing b by c under v1: b's blobs kept %v, c's %v, a's %v; %d blobs, want %d", has(b), has(c), has(a), blobCount(), n)
	}
}
