package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/packer-build/packer/internal/testutil"
)

// cacheSuite is B5, a CI runner that starts empty: the Express fixture
// built cold (empty cache dir), then with an empty cache dir and
// --cache-from the registry cache an earlier build wrote, against a warm
// local rebuild of the same source (the floor: nothing to run, nothing to
// fetch). Interleaved, medians.
func cacheSuite(packer string, runs int) error {
	env, err := expressBench(packer)
	if err != nil {
		return err
	}
	defer env.close()
	packer, base, reg, tmp, dir := env.packer, env.base, env.reg, env.tmp, env.dir
	ref := reg + "/bench/express-cache:main"
	warmCache := filepath.Join(tmp, "warm-cache")
	build := func(cache string, args ...string) error {
		cmd := exec.Command(packer, append([]string{"build", "-q", dir, "--base", base, "--cache-dir", cache, "-o", "oci:" + filepath.Join(tmp, "out"), "-t", "app:v1"}, args...)...)
		return runQuiet(cmd)
	}
	// The cache the runners start from, and the warm local cache.
	if err := build(warmCache, "--cache-to", "registry:"+ref); err != nil {
		return fmt.Errorf("writing the registry cache: %w", err)
	}
	var cold, fromCache, warm, download []time.Duration
	for i := 0; i < runs; i++ {
		// The floor's other half: fetching the cache's blobs alone.
		d, err := timeIt(func() error { return fetchBlobs(ref) })
		if err != nil {
			return fmt.Errorf("downloading the cache's blobs: %w", err)
		}
		download = append(download, d)
		d, err = timeIt(func() error { return build(filepath.Join(tmp, fmt.Sprintf("cold-%d", i))) })
		if err != nil {
			return fmt.Errorf("cold: %w", err)
		}
		cold = append(cold, d)
		d, err = timeIt(func() error {
			return build(filepath.Join(tmp, fmt.Sprintf("from-%d", i)), "--cache-from", "registry:"+ref)
		})
		if err != nil {
			return fmt.Errorf("--cache-from: %w", err)
		}
		fromCache = append(fromCache, d)
		d, err = timeIt(func() error { return build(warmCache) })
		if err != nil {
			return fmt.Errorf("warm: %w", err)
		}
		warm = append(warm, d)
	}
	c, f, w := median(cold), median(fromCache), median(warm)
	fmt.Printf("\n## B5 CI cold start: express (npm ci) on the Debian 13 base, registry: %s (medians of %d, interleaved)\n", registryKind, runs)
	fmt.Printf("%-46s %10s %10s\n", "build", "median", "vs warm")
	fmt.Printf("%-46s %10s %9.2f×\n", "warm local rebuild (same cache dir)", w.Round(time.Millisecond), 1.0)
	fmt.Printf("%-46s %10s %9.2f×\n", "empty cache dir + --cache-from registry", f.Round(time.Millisecond), f.Seconds()/w.Seconds())
	fmt.Printf("%-46s %10s %9.2f×\n", "empty cache dir, cold (npm ci runs)", c.Round(time.Millisecond), c.Seconds()/w.Seconds())
	dl := median(download)
	fmt.Printf("%-46s %10s\n", "downloading the cache's blobs alone", dl.Round(time.Millisecond))
	fmt.Printf("--cache-from / (warm + download) = %.2f× (#16's goal ≤ 1.3×)\n", f.Seconds()/(w+dl).Seconds())
	return nil
}

// fetchBlobs reads the registry cache artifact at ref and downloads each
// of its blobs.
func fetchBlobs(ref string) error {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	img, err := remote.Image(r)
	if err != nil {
		return err
	}
	if _, err := img.RawConfigFile(); err != nil {
		return err
	}
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, rc)
		rc.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// benchEnv is what the express suites share: packer's absolute path, the
// Debian test base, a registry, a temp dir and a copy of the express
// fixture in it.
type benchEnv struct {
	packer, base, reg, tmp, dir string
	close                       func()
}

func expressBench(packer string) (*benchEnv, error) {
	base, err := testutil.EnsureDebianBase()
	if err != nil {
		return nil, fmt.Errorf("Debian test base: %w", err)
	}
	abs, err := filepath.Abs(packer)
	if err != nil {
		return nil, err
	}
	reg, stop, err := startRegistry()
	if err != nil {
		return nil, err
	}
	tmp := mustTemp()
	e := &benchEnv{packer: abs, base: base, reg: reg, tmp: tmp, dir: filepath.Join(tmp, "express"),
		close: func() { stop(); os.RemoveAll(tmp) }}
	if err := exec.Command("cp", "-a", filepath.Join("testdata", "fixtures", "node-express"), e.dir).Run(); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}
