package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// faultProxy is a reverse proxy in front of the real registry process.
// Each request goes to the fault of the scenario its repository names
// (/v2/SCENARIO/...); a fault returns true when it answered itself.
type faultProxy struct {
	target *url.URL
	mu     sync.Mutex
	faults map[string]func(w http.ResponseWriter, r *http.Request) bool
	hits   map[string]int
}

func (p *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	scenario, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v2/"), "/")
	p.mu.Lock()
	fault := p.faults[scenario]
	p.mu.Unlock()
	if fault != nil && fault(w, r) {
		p.mu.Lock()
		p.hits[scenario]++
		p.mu.Unlock()
		return
	}
	httputil.NewSingleHostReverseProxy(p.target).ServeHTTP(w, r)
}

// nth answers with fault the first n requests that match, then lets
// requests through.
func nth(n int, match func(r *http.Request) bool, fault func(w http.ResponseWriter, r *http.Request)) func(http.ResponseWriter, *http.Request) bool {
	var mu sync.Mutex
	seen := 0
	return func(w http.ResponseWriter, r *http.Request) bool {
		if !match(r) {
			return false
		}
		mu.Lock()
		seen++
		hit := seen <= n
		mu.Unlock()
		if hit {
			fault(w, r)
		}
		return hit
	}
}

func isBlobUpload(r *http.Request) bool {
	return strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPatch || r.Method == http.MethodPut)
}
func isManifestPut(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/")
}
func isBlobGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/sha256:")
}

// partialBlob answers a blob GET with its headers and half its body, then
// breaks the connection: with a reset (rst) or a clean close (a truncated
// body).
func partialBlob(target *url.URL, rst bool) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		resp, err := http.Get(target.String() + r.URL.Path)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\nDocker-Content-Digest: %s\r\n\r\n", len(body), resp.Header.Get("Docker-Content-Digest"))
		buf.Write(body[:len(body)/2])
		buf.Flush()
		if tc, ok := conn.(*net.TCPConn); ok && rst {
			tc.SetLinger(0)
		}
		conn.Close()
	}
}

// resetUpload reads part of a blob upload's body, then resets the
// connection.
func resetUpload(w http.ResponseWriter, r *http.Request) {
	io.CopyN(io.Discard, r.Body, 512)
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// TestRegistryFaults pushes (and pulls a base) through a proxy in front of
// the real registry process that injects one fault per scenario. The
// transient ones are retried and the push succeeds; a stall and a 401
// fail with an error naming them and leave no tag. After every scenario a
// walk of the registry proves that no tag points at a missing blob.
func TestRegistryFaults(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, "")
	target, _ := url.Parse("http://" + reg)
	p := &faultProxy{target: target, faults: map[string]func(http.ResponseWriter, *http.Request) bool{}, hits: map[string]int{}}
	proxy := httptest.NewServer(p)
	t.Cleanup(proxy.Close)
	proxyHost := strings.TrimPrefix(proxy.URL, "http://")

	var rngMu sync.Mutex
	rng := rand.New(rand.NewPCG(7, 11))
	status := func(code int, retryAfter string) func(w http.ResponseWriter, r *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			http.Error(w, http.StatusText(code), code)
		}
	}
	all := func(*http.Request) bool { return true }
	for _, sc := range []struct {
		name  string
		fault func(http.ResponseWriter, *http.Request) bool
		pull  bool          // build on a base pulled through the proxy
		ok    bool          // the build must succeed
		want  string        // else the error's last line holds this
		least time.Duration // a success that must have waited (Retry-After)
	}{
		{name: "burst500", fault: nth(3, isBlobUpload, status(500, "")), ok: true},
		{name: "burst502", fault: nth(3, isManifestPut, status(502, "")), ok: true},
		{name: "rate503", ok: true, fault: func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/v2/" {
				return false
			}
			rngMu.Lock()
			fail := rng.Float64() < 0.3
			rngMu.Unlock()
			if fail {
				http.Error(w, "overloaded", http.StatusServiceUnavailable)
			}
			return fail
		}},
		{name: "retryafter429", fault: nth(2, isManifestPut, status(429, "2")), ok: true, least: 4 * time.Second},
		{name: "resetpatch", fault: nth(1, isBlobUpload, resetUpload), ok: true},
		{name: "resetget", fault: nth(1, isBlobGet, partialBlob(target, true)), pull: true, ok: true},
		{name: "truncatedget", fault: nth(1, isBlobGet, partialBlob(target, false)), pull: true, ok: true},
		{name: "stall", fault: func(w http.ResponseWriter, r *http.Request) bool {
			if !isManifestPut(r) {
				return false
			}
			// Read the body first: only then does the server notice the
			// client going away. Bounded, so the test cannot hang.
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(60 * time.Second):
			}
			return true
		}, want: "made no progress"},
		{name: "unauthorized", fault: nth(1000, all, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		}), want: "packer login"},
	} {
		t.Run(sc.name, func(t *testing.T) {
			base := "builtin:static"
			if sc.pull {
				// A base of two random layers, pushed straight to the
				// registry; the build pulls it through the proxy.
				img, err := random.Image(256<<10, 2)
				if err != nil {
					t.Fatal(err)
				}
				ref, _ := name.ParseReference(reg+"/"+sc.name+"/base:v1", name.Insecure)
				if err := remote.Write(ref, img); err != nil {
					t.Fatal(err)
				}
				base = proxyHost + "/" + sc.name + "/base:v1"
			}
			p.mu.Lock()
			p.faults[sc.name] = sc.fault
			p.mu.Unlock()
			tag := proxyHost + "/" + sc.name + "/app:v1"
			start := time.Now()
			r := packer(t, cacheEnv(t), "build", bigContext(t, 2<<20), "--plan", sourcePlan(t), "--base", base,
				"-t", tag, "--push", "--registry-timeout", "3s", "--cache-dir", t.TempDir())
			took := time.Since(start)
			p.mu.Lock()
			hits := p.hits[sc.name]
			p.mu.Unlock()
			if hits == 0 {
				t.Fatalf("no fault was injected: the scenario tested nothing\n%s", r.stderr)
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			t.Logf("%s: %d faults injected, %s, ok=%v; last line: %s", sc.name, hits, took.Round(100*time.Millisecond), r.err == nil, last)
			if sc.ok {
				if r.err != nil {
					t.Fatalf("build through %s failed: %v\n%s", sc.name, r.err, r.stderr)
				}
				if took < sc.least {
					t.Errorf("done in %s, but Retry-After asked for %s of waiting", took, sc.least)
				}
				if _, err := remote.Image(mustRef(t, reg+"/"+sc.name+"/app:v1")); err != nil {
					t.Errorf("the pushed tag does not resolve: %v", err)
				}
			} else {
				if r.err == nil {
					t.Fatalf("build through %s succeeded", sc.name)
				}
				if !strings.Contains(last, sc.want) {
					t.Errorf("last line %q does not say %q", last, sc.want)
				}
				if sc.name == "stall" && took > 3*time.Second+10*time.Second {
					t.Errorf("the stalled push took %s to fail, over the 3s timeout + 10s", took)
				}
				if _, err := remote.Head(mustRef(t, reg+"/"+sc.name+"/app:v1")); err == nil {
					t.Errorf("the tag was pushed although the build failed")
				}
			}
			walkRegistry(t, reg)
		})
	}
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// walkRegistry checks that every tag of every repository resolves to a
// manifest whose config, layers and child manifests all exist.
func walkRegistry(t *testing.T, reg string) {
	t.Helper()
	resp, err := http.Get("http://" + reg + "/v2/_catalog?n=1000")
	if err != nil {
		t.Fatal(err)
	}
	var catalog struct{ Repositories []string }
	json.NewDecoder(resp.Body).Decode(&catalog)
	resp.Body.Close()
	for _, repo := range catalog.Repositories {
		r, err := name.NewRepository(reg+"/"+repo, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		tags, err := remote.List(r)
		if err != nil {
			continue // a repository with blobs and no tags
		}
		for _, tag := range tags {
			checkManifest(t, r.Tag(tag))
		}
	}
}

func checkManifest(t *testing.T, ref name.Reference) {
	t.Helper()
	desc, err := remote.Get(ref)
	if err != nil {
		t.Errorf("tag %s points at a missing manifest: %v", ref, err)
		return
	}
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			t.Errorf("%s: %v", ref, err)
			return
		}
		im, _ := idx.IndexManifest()
		for _, m := range im.Manifests {
			checkManifest(t, ref.Context().Digest(m.Digest.String()))
		}
		return
	}
	img, err := desc.Image()
	if err != nil {
		t.Errorf("%s: %v", ref, err)
		return
	}
	m, err := img.Manifest()
	if err != nil {
		t.Errorf("%s: %v", ref, err)
		return
	}
	for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
		u := fmt.Sprintf("http://%s/v2/%s/blobs/%s", ref.Context().RegistryStr(), ref.Context().RepositoryStr(), d.Digest)
		resp, err := http.Head(u)
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("tag %s points at a missing blob %s (%v %v)", ref, d.Digest, err, resp)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
}
