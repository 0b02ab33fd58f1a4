package e2e

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/packer-build/packer/internal/testutil"
	"github.com/packer-build/packer/sbom"
)

// uploadLog forwards to a registry and records each blob upload: its
// digest (from the closing PUT) and the bytes sent for it.
type uploadLog struct {
	target  *url.URL
	mu      sync.Mutex
	pending map[string]int64  // upload path → bytes so far
	blobs   map[v1.Hash]int64 // uploaded blob → bytes sent
	repos   map[string]int64  // repository → blob bytes sent to it
	mounts  map[string]int    // repository → cross-repository mounts asked
}

func (p *uploadLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPatch || r.Method == http.MethodPut) {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		r.ContentLength = int64(len(b))
		p.mu.Lock()
		p.pending[r.URL.Path] += int64(len(b))
		if repo, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/uploads/"); ok {
			p.repos[repo] += int64(len(b))
		}
		if r.Method == http.MethodPut {
			if h, err := v1.NewHash(r.URL.Query().Get("digest")); err == nil {
				p.blobs[h] += p.pending[r.URL.Path]
			}
			delete(p.pending, r.URL.Path)
		}
		p.mu.Unlock()
	}
	if r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
		if repo, _, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/blobs/uploads/"); ok {
			p.mu.Lock()
			p.mounts[repo]++
			p.mu.Unlock()
		}
	}
	httputil.NewSingleHostReverseProxy(p.target).ServeHTTP(w, r)
}

// countedRegistry starts a registry process behind an uploadLog and
// returns the registry's address, the proxy's (to push to) and the log.
func countedRegistry(t *testing.T) (reg, host string, log *uploadLog) {
	t.Helper()
	reg = startRegistry(t, "")
	target, _ := url.Parse("http://" + reg)
	log = &uploadLog{target: target}
	log.reset()
	srv := httptest.NewServer(log)
	t.Cleanup(srv.Close)
	return reg, strings.TrimPrefix(srv.URL, "http://"), log
}

func (p *uploadLog) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending, p.blobs, p.repos, p.mounts = map[string]int64{}, map[v1.Hash]int64{}, map[string]int64{}, map[string]int{}
}

// TestSecondRepositoryMountsBlobs: one build pushed to two repositories
// of one registry sends its blobs once; the second repository gets them
// by cross-repository mounts (counted at the registry's door), and both
// serve the image.
func TestSecondRepositoryMountsBlobs(t *testing.T) {
	testutil.NeedTool(t, "npm", "install Node.js")
	base := testutil.DebianBase(t)
	reg, host, log := countedRegistry(t)
	dir := testutil.CopyFixture(t, "node-express")
	mustPacker(t, nodeEnv(t), "build", "-q", dir, "--base", base, "--push", "--sbom", "none", "-t", host+"/team-a/express:v1", "-t", host+"/team-b/express:v1")
	a, b := log.repos["team-a/express"], log.repos["team-b/express"]
	t.Logf("blob bytes sent: team-a %d, team-b %d (%d mounts)", a, b, log.mounts["team-b/express"])
	if a < 100_000 {
		t.Fatalf("the first repository got %d blob bytes; the count proves nothing", a)
	}
	if b > 0 || log.mounts["team-b/express"] == 0 {
		t.Errorf("the second repository got %d blob bytes and %d mounts; want its blobs (and config) mounted from the first", b, log.mounts["team-b/express"])
	}
	for _, repo := range []string{"team-a", "team-b"} {
		d, _ := name.NewTag(reg+"/"+repo+"/express:v1", name.Insecure)
		img, err := remote.Image(d)
		if err != nil {
			t.Fatalf("%s: %v", repo, err)
		}
		if err := validate.Image(img); err != nil {
			t.Errorf("%s serves a broken image: %v", repo, err)
		}
	}
}

// TestOneFileChangePushesOnlyItsSBOMShare: the SBOM is split by layer, so
// after a one-file change the push uploads the image's SBOM documents and
// the new app layer's, never a document of an unchanged layer (the base's
// OS packages, the dependencies): counted at the registry's door. packer
// sbom still joins one complete document.
func TestOneFileChangePushesOnlyItsSBOMShare(t *testing.T) {
	testutil.NeedTool(t, "npm", "install Node.js")
	base := testutil.DebianBase(t)
	_, host, log := countedRegistry(t)
	dir := testutil.CopyFixture(t, "node-express")
	cache := t.TempDir()
	ref := host + "/team/express:v1"
	build := func() string {
		out := mustPacker(t, nodeEnv(t), "build", "-q", dir, "--base", base, "--cache-dir", cache, "--push", "-t", ref)
		return strings.TrimSpace(out[strings.LastIndex(out, "@")+1:])
	}
	first := build()
	firstBlobs := len(log.blobs)
	src := filepath.Join(dir, "server.js")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, append(b, "\n// a one-file change\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	log.reset()
	second := build()
	if first == second {
		t.Fatalf("the change did not change the image (%s)", first)
	}

	// What the second image's SBOM artifacts hold: the image documents
	// (no layer annotation) and one per layer.
	d, _ := name.NewDigest(host+"/team/express@"+second, name.Insecure)
	img, err := remote.Image(d)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := img.Manifest()
	app := m.Layers[len(m.Layers)-1].Digest // the app layer is last
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	describes := map[v1.Hash]string{} // SBOM blob → the layer it describes ("" for the image's)
	parts := 0
	for _, r := range im.Manifests {
		art, err := remote.Image(d.Context().Digest(r.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		am, _ := art.Manifest()
		for _, l := range am.Layers {
			describes[l.Digest] = l.Annotations[sbom.LayerAnnotation]
			if l.Annotations[sbom.LayerAnnotation] != "" {
				parts++
			}
		}
	}
	if len(im.Manifests) != 2 || parts < 4 {
		t.Fatalf("want SPDX and CycloneDX artifacts, each split over ≥ 2 layers; got %d artifacts, %d layer documents", len(im.Manifests), parts)
	}
	var sbomBytes, otherBytes int64
	for h, n := range log.blobs {
		layer, isSBOM := describes[h]
		switch {
		case !isSBOM:
			otherBytes += n
		case layer != "" && layer != app.String():
			t.Errorf("the one-file change re-uploaded %s (%d bytes): the SBOM document of unchanged layer %s", h, n, layer)
		default:
			sbomBytes += n
		}
	}
	t.Logf("first push: %d blobs; after a one-file change: %d blobs, %d bytes of SBOM (image documents + the app layer's), %d other bytes (app layer %d)",
		firstBlobs, len(log.blobs), sbomBytes, otherBytes, m.Layers[len(m.Layers)-1].Size)
	if sbomBytes == 0 {
		t.Errorf("no SBOM document was uploaded for the new image: the count proves nothing")
	}

	// One complete document, with the base's packages and the dependencies.
	spdx := mustPacker(t, nil, "sbom", ref)
	for _, want := range []string{"pkg:deb/debian/libc6@", "pkg:npm/express@4.22.3", second} {
		if !strings.Contains(spdx, want) {
			t.Errorf("packer sbom lacks %q", want)
		}
	}
	if strings.Contains(spdx, "DocumentRef-") {
		t.Errorf("packer sbom printed a document with external references")
	}
}
