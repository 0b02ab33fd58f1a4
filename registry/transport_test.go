package registry_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"math/big"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/packer-build/packer/oci"
	"github.com/packer-build/packer/registry"
)

// faulty serves a real in-process registry behind fault for every
// request (return true when it answered).
func faulty(t *testing.T, fault func(w http.ResponseWriter, r *http.Request) bool) string {
	t.Helper()
	reg := ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !fault(w, r) {
			reg.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(s.Close)
	u, _ := url.Parse(s.URL)
	return u.Host
}

func pushRandom(t *testing.T, c *registry.Client, host string) error {
	t.Helper()
	img, err := random.Image(64<<10, 3)
	if err != nil {
		t.Fatal(err)
	}
	tag, err := c.ParseTag(host + "/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Push(context.Background(), oci.Result(img), []name.Tag{tag}, oci.Attachments{})
	return err
}

// TestPushThroughServerErrors: a registry failing 30 % of requests with
// 503 (a fixed pseudo-random sequence) still takes the push.
func TestPushThroughServerErrors(t *testing.T) {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(1, 2))
	var failed atomic.Int64
	host := faulty(t, func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		fail := rng.Float64() < 0.3
		mu.Unlock()
		if fail {
			failed.Add(1)
			http.Error(w, "overloaded", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	if err := pushRandom(t, &registry.Client{}, host); err != nil {
		t.Fatalf("push through 503s: %v", err)
	}
	if failed.Load() == 0 {
		t.Fatalf("no request failed: the test did not inject anything")
	}
	ref, err := name.ParseReference(host+"/app:v1", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := remote.Image(ref); err != nil {
		t.Errorf("the pushed tag does not resolve: %v", err)
	}
}

// TestRetryAfterHonoured: two 429s with Retry-After: 3 on the manifest
// PUT are waited out (≥ 6 s), and the push succeeds.
func TestRetryAfterHonoured(t *testing.T) {
	var mu sync.Mutex
	var limited []time.Time
	host := faulty(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/manifests/") {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		if len(limited) < 2 {
			limited = append(limited, time.Now())
			w.Header().Set("Retry-After", "3")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return true
		}
		return false
	})
	start := time.Now()
	if err := pushRandom(t, &registry.Client{}, host); err != nil {
		t.Fatalf("push through 429s: %v", err)
	}
	if len(limited) != 2 {
		t.Fatalf("%d rate-limited answers, want 2", len(limited))
	}
	if gap := time.Since(limited[1]); gap < 3*time.Second {
		t.Errorf("the retry after the second 429 came %s later, want ≥ 3s (Retry-After)", gap)
	}
	if d := limited[1].Sub(limited[0]); d < 3*time.Second {
		t.Errorf("the second attempt came %s after the first 429, want ≥ 3s", d)
	}
	t.Logf("push with two Retry-After: 3 took %s", time.Since(start).Round(time.Millisecond))
}

// TestStalledRegistry: a registry that stops answering fails the push
// within the timeout (plus slack), naming the stall, instead of hanging.
func TestStalledRegistry(t *testing.T) {
	release := make(chan struct{})
	host := faulty(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			<-release
			return true
		}
		return false
	})
	t.Cleanup(func() { close(release) }) // before the server's Close, which waits for the handler
	start := time.Now()
	err := pushRandom(t, &registry.Client{Timeout: 2 * time.Second}, host)
	elapsed := time.Since(start)
	var stall *registry.StallError
	if !errors.As(err, &stall) {
		t.Fatalf("push to a stalled registry: %v, want a StallError", err)
	}
	if elapsed > 2*time.Second+10*time.Second {
		t.Errorf("failing took %s, want within the timeout plus 10s", elapsed)
	}
	if !strings.Contains(err.Error(), "made no progress for 2s") || !strings.HasSuffix(err.Error(), "raise --registry-timeout") || strings.Contains(err.Error(), "plain HTTP") {
		t.Errorf("error %q does not say what happened and what to do", err)
	}
}

// TestLayoutBaseWithReferrers: a layout packer wrote (the image tagged,
// its SBOM referrers beside it, untagged with an artifactType) is a base
// without naming the tag.
func TestLayoutBaseWithReferrers(t *testing.T) {
	dir := t.TempDir()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	sbom, err := random.Image(512, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "v1"})); err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(sbom, layout.WithAnnotations(map[string]string{"org.opencontainers.image.created": "1970-01-01T00:00:00Z"})); err != nil {
		t.Fatal(err)
	}
	// Mark the second one as a referrer, as packer's layouts do.
	idx, _ := p.ImageIndex()
	im, _ := idx.IndexManifest()
	im.Manifests[1].ArtifactType = "application/spdx+json"
	raw, _ := json.Marshal(im)
	if err := os.WriteFile(filepath.Join(dir, "index.json"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, _ := img.ConfigFile()
	got, _, err := (&registry.Client{}).Resolve(context.Background(), "oci:"+dir, v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture})
	if err != nil {
		t.Fatalf("Resolve(oci:DIR) = %v", err)
	}
	want, _ := img.Digest()
	if d, _ := got.Digest(); d != want {
		t.Errorf("resolved %s, want the tagged image %s", d, want)
	}
}

// TestPartialTagsNamed: when the second tag's PUT fails, the error says
// the first moved and the second did not.
func TestPartialTagsNamed(t *testing.T) {
	host := faulty(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/v2") {
			http.Error(w, "denied", http.StatusForbidden)
			return true
		}
		return false
	})
	c := &registry.Client{}
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	v1tag, _ := c.ParseTag(host + "/app:v1")
	v2tag, _ := c.ParseTag(host + "/app:v2")
	_, err = c.Push(context.Background(), oci.Result(img), []name.Tag{v1tag, v2tag}, oci.Attachments{})
	var te *registry.TagError
	if !errors.As(err, &te) {
		t.Fatalf("push = %v, want a TagError", err)
	}
	if !strings.Contains(err.Error(), "tags moved: "+host+"/app:v1; not moved: "+host+"/app:v2") {
		t.Errorf("error %q does not name the moved and unmoved tags", err)
	}
}

// TestPrivateCARegistry: a registry whose certificate a private CA
// signed is refused with a hint naming --registry-ca, and reached with
// it.
func TestPrivateCARegistry(t *testing.T) {
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "packer test CA"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(crand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), crand.Reader)
	// 127.0.0.2: a loopback address packer does not treat as plain HTTP.
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.2")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	leafDER, err := x509.CreateCertificate(crand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("SKIP: cannot listen on 127.0.0.2: %v", err)
	}
	s := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	s.Listener.Close()
	s.Listener = ln
	s.TLS = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}}}
	s.StartTLS()
	t.Cleanup(s.Close)
	host := ln.Addr().String()

	err = pushRandom(t, &registry.Client{}, host)
	if err == nil || !strings.Contains(err.Error(), "not signed by a certificate authority this machine trusts") || !strings.Contains(err.Error(), "--registry-ca FILE") || strings.Contains(err.Error(), "--insecure-registry") {
		t.Fatalf("push to a private-CA registry without its CA: %v; want the --registry-ca hint", err)
	}
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &registry.Client{CAFile: caFile}
	if err := c.Check(); err != nil {
		t.Fatal(err)
	}
	if err := pushRandom(t, c, host); err != nil {
		t.Fatalf("push with --registry-ca: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.pem")
	os.WriteFile(bad, []byte("not a certificate"), 0o644)
	if err := (&registry.Client{CAFile: bad}).Check(); err == nil || !strings.Contains(err.Error(), "holds no PEM certificate") {
		t.Errorf("Check() with a non-PEM CA file = %v", err)
	}
}

// TestNoFallbackTagWhenTagsFail: when the image's tag cannot move, the
// SBOM referrer (and the sha256-… fallback tag a registry without the
// referrers API would get) is not written.
func TestNoFallbackTagWhenTagsFail(t *testing.T) {
	var referrerWrites atomic.Int64
	host := faulty(t, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/manifests/v1") {
			http.Error(w, "denied", http.StatusForbidden)
			return true
		}
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/sha256-") {
			referrerWrites.Add(1)
		}
		return false
	})
	c := &registry.Client{}
	img, _ := random.Image(1024, 1)
	d, _ := img.Digest()
	sb, _ := random.Image(256, 1)
	sbom := mutate.Subject(mutate.ConfigMediaType(sb, "application/spdx+json"), v1.Descriptor{MediaType: types.OCIManifestSchema1, Digest: d})
	tag, _ := c.ParseTag(host + "/app:v1")
	_, err := c.Push(context.Background(), oci.Result(img), []name.Tag{tag}, oci.Attachments{Referrers: []v1.Image{sbom.(v1.Image)}})
	var te *registry.TagError
	if !errors.As(err, &te) {
		t.Fatalf("push = %v, want a TagError", err)
	}
	ref, _ := name.ParseReference(host+"/app@"+mustDigest(t, sbom.(v1.Image)), name.Insecure)
	if _, err := remote.Head(ref); err == nil || referrerWrites.Load() != 0 {
		t.Errorf("the SBOM was pushed for an image whose tag did not move (fallback tag writes: %d)", referrerWrites.Load())
	}
}

func mustDigest(t *testing.T, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// TestRegistryMirror: a Docker Hub base resolves through --registry-mirror
// (same repository path, the mirror's own prefix) and keeps its Docker Hub
// name; without a mirror, a Docker Hub base that cannot be reached says
// how to choose another base or a mirror.
func TestRegistryMirror(t *testing.T) {
	host := faulty(t, func(http.ResponseWriter, *http.Request) bool { return false })
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := name.ParseReference(host+"/hub/library/node:22-slim", name.Insecure)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	c := &registry.Client{Mirrors: []string{host + "/hub"}}
	got, info, err := c.Resolve(context.Background(), "node:22-slim", v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		t.Fatalf("Resolve through the mirror: %v", err)
	}
	if d, _ := got.Digest(); d != want || info.Digest != want || !strings.Contains(info.Name, "library/node:22-slim") || strings.Contains(info.Name, host) {
		t.Errorf("resolved %s (%+v), want %s named after Docker Hub", d, info, want)
	}
	if testing.Short() {
		return
	}
	_, _, err = (&registry.Client{Timeout: 5 * time.Second}).Resolve(context.Background(), "packer-test-no-such/base:1", v1.Platform{OS: "linux", Architecture: "amd64"})
	if err == nil || !strings.Contains(err.Error(), "--registry-mirror HOST") || !strings.Contains(err.Error(), "PACKER_BASE") {
		t.Errorf("an unreachable Docker Hub base: %v", err)
	}
}
