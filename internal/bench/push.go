package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// countingProxy forwards to a registry and counts the request bytes of
// blob uploads (PATCH/PUT to /blobs/uploads/) and manifest PUTs.
type countingProxy struct {
	target              *url.URL
	mu                  sync.Mutex
	blobBytes, manBytes int64
	blobs               int
}

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body != nil && (r.Method == http.MethodPatch || r.Method == http.MethodPut) {
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		r.Body = io.NopCloser(strings.NewReader(string(b)))
		r.ContentLength = int64(len(b))
		p.mu.Lock()
		switch {
		case strings.Contains(r.URL.Path, "/blobs/uploads/"):
			p.blobBytes += int64(len(b))
			if r.Method == http.MethodPut {
				p.blobs++
			}
		case strings.Contains(r.URL.Path, "/manifests/"):
			p.manBytes += int64(len(b))
		}
		p.mu.Unlock()
	}
	httputil.NewSingleHostReverseProxy(p.target).ServeHTTP(w, r)
}

// pushSuite measures what a one-file change pushes: the Express fixture
// pushed once, a source file changed, pushed again through a counting
// proxy: blob bytes (and how many), manifest bytes, against the new app
// layer's size. The SBOM's share is what #16 wants to shrink.
func pushSuite(packer string) error {
	env, err := expressBench(packer)
	if err != nil {
		return err
	}
	defer env.close()
	packer, base, reg, tmp, dir := env.packer, env.base, env.reg, env.tmp, env.dir
	target, _ := url.Parse("http://" + reg)
	p := &countingProxy{target: target}
	srv := httptest.NewServer(p)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	cache := filepath.Join(tmp, "cache")
	meta := filepath.Join(tmp, "meta.json")
	push := func(args ...string) error {
		return runQuiet(exec.Command(packer, append([]string{"build", "-q", dir, "--base", base, "--cache-dir", cache, "-t", host + "/bench/express:v1", "--push", "--metadata-file", meta}, args...)...))
	}
	if err := push(); err != nil {
		return fmt.Errorf("first push: %w", err)
	}
	src := filepath.Join(dir, "server.js")
	b, _ := os.ReadFile(src)
	if err := os.WriteFile(src, append(b, []byte("\n// a one-file change\n")...), 0o644); err != nil {
		return err
	}
	p.mu.Lock()
	p.blobBytes, p.manBytes, p.blobs = 0, 0, 0
	p.mu.Unlock()
	if err := push(); err != nil {
		return fmt.Errorf("second push: %w", err)
	}
	mb, err := os.ReadFile(meta)
	if err != nil {
		return err
	}
	var m struct {
		Images []struct {
			Layers []struct {
				Name string `json:"name"`
				Size int64  `json:"size"`
			} `json:"layers"`
		} `json:"packer.images"`
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		return fmt.Errorf("metadata file: %w", err)
	}
	app, config := int64(0), int64(0)
	if d, err := name.ParseReference(reg+"/bench/express:v1", name.Insecure); err == nil {
		if img, err := remote.Image(d); err == nil {
			if raw, err := img.RawConfigFile(); err == nil {
				config = int64(len(raw))
			}
		}
	}
	for _, im := range m.Images {
		for _, l := range im.Layers {
			if l.Name == "app" {
				app = l.Size
			}
		}
	}
	fmt.Printf("\n## one-file change pushed (express, Debian base, %s)\n", registryKind)
	fmt.Printf("%-44s %12s\n", "what", "bytes")
	fmt.Printf("%-44s %12d\n", "new app layer (compressed)", app)
	fmt.Printf("%-44s %12d (%d blobs)\n", "blob bytes uploaded", p.blobBytes, p.blobs)
	fmt.Printf("%-44s %12d\n", "manifest bytes", p.manBytes)
	fmt.Printf("%-44s %12d\n", "image config", config)
	fmt.Printf("%-44s %11.1f×\n", "uploaded / app layer", float64(p.blobBytes+p.manBytes)/float64(max(app, 1)))
	// #16's goal: ≤ 1.5× what must change (the app layer, the config and
	// the manifests); the rest is the SBOM's share.
	fmt.Printf("%-44s %11.2f×\n", "uploaded / (app layer + config + manifests)", float64(p.blobBytes+p.manBytes)/float64(max(app+config+p.manBytes, 1)))
	// The same kind of change with one complete SBOM document per format
	// (--sbom-split=false; what every push carried before the split).
	if err := os.WriteFile(src, append(b, []byte("\n// another one-file change\n")...), 0o644); err != nil {
		return err
	}
	p.mu.Lock()
	p.blobBytes, p.manBytes, p.blobs = 0, 0, 0
	p.mu.Unlock()
	if err := push("--sbom-split=false"); err != nil {
		return fmt.Errorf("third push: %w", err)
	}
	fmt.Printf("%-44s %12d (%d blobs)\n", "blob bytes uploaded with --sbom-split=false", p.blobBytes, p.blobs)
	return nil
}
