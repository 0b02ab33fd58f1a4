package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/internal/testutil"
	"github.com/packer-build/packer/rootfs"
)

// executorSuite: what running steps inside the image costs. The Debian
// base's one-time unpack, a no-op step inside the image against the
// same step on the host (interleaved), and cold and one-file rebuilds of
// the TypeScript (npm), Flask and FastAPI fixtures with --executor image against
// --executor host, interleaved, in the same run.
func executorSuite(packer string, runs int, rootfsCold bool) error {
	base, err := testutil.EnsureDebianBase()
	if err != nil {
		return fmt.Errorf("Debian test base: %w", err)
	}
	packer, _ = filepath.Abs(packer)
	img, err := testutil.LayoutImage(base)
	if err != nil {
		return err
	}
	tmp := mustTemp()
	defer os.RemoveAll(tmp)
	ctx := context.Background()

	fmt.Printf("\n## Steps inside the image (medians of %d)\n", runs)
	var unpack []time.Duration
	var cache string
	for i := 0; i < runs; i++ {
		cache = filepath.Join(tmp, fmt.Sprintf("unpack-%d", i))
		d, err := timeIt(func() error { _, err := rootfs.Cached(ctx, img, cache); return err })
		if err != nil {
			return fmt.Errorf("unpacking the base: %w", err)
		}
		unpack = append(unpack, d)
	}
	size, _ := exec.Command("du", "-sm", cache).Output()
	fmt.Printf("unpack the Debian base once (%s MB on disk): %s\n", strings.Fields(string(size))[0], median(unpack).Round(time.Millisecond))

	stage := filepath.Join(tmp, "stage")
	if err := os.Mkdir(stage, 0o755); err != nil {
		return err
	}
	in := builder.InImage{CacheDir: cache}
	step := builder.StepRun{Argv: []string{"true"}, Dir: stage, Base: img, Output: io.Discard}
	var host, image []time.Duration
	for i := 0; i < 10*runs; i++ {
		d, err := timeIt(func() error { return builder.Host{}.Run(ctx, step) })
		if err != nil {
			return err
		}
		host = append(host, d)
		d, err = timeIt(func() error { return in.Run(ctx, step) })
		if err != nil {
			return fmt.Errorf("a step inside the image: %w", err)
		}
		image = append(image, d)
	}
	fmt.Printf("a no-op step (`true`), %d each: host %s, inside the image %s (+%s per step)\n", 10*runs,
		median(host).Round(10*time.Microsecond), median(image).Round(10*time.Microsecond), (median(image) - median(host)).Round(10*time.Microsecond))

	// The TypeScript app on the Node.js 22 base (the Debian one has no npm);
	// Flask and FastAPI on the Debian base (Python 3.13 and pip).
	nodeBase, err := testutil.EnsureNodeBase()
	if err != nil {
		return fmt.Errorf("Node.js test base: %w", err)
	}
	fixtures := []struct{ name, fixture, edit, base string }{
		{"typescript build (npm, node 22)", "node-ts-build", "src/server.ts", nodeBase},
		{"flask (requirements.txt)", "py-flask", "app.py", base},
		{"fastapi (uv.lock)", "py-fastapi-uv", "main.py", base},
	}
	// Each fixture's base, unpacked once for the image runs.
	for _, f := range fixtures {
		img, err := testutil.LayoutImage(f.base)
		if err != nil {
			return err
		}
		if _, err := rootfs.Cached(ctx, img, filepath.Join(tmp, "unpacked", f.fixture)); err != nil {
			return err
		}
	}
	fmt.Printf("%-26s %12s %12s %7s %14s %14s %7s\n", "fixture", "cold host", "cold image", "ratio", "rebuild host", "rebuild image", "ratio")
	env := append(os.Environ(), "COREPACK_ENABLE_DOWNLOAD_PROMPT=0")
	for _, f := range fixtures {
		times := map[string][]time.Duration{}
		for i := 0; i < runs; i++ {
			for _, ex := range []string{"host", "image"} {
				dir := filepath.Join(tmp, fmt.Sprintf("%s-%s-%d", f.fixture, ex, i))
				if err := exec.Command("cp", "-a", filepath.Join("testdata", "fixtures", f.fixture), dir).Run(); err != nil {
					return err
				}
				if f.fixture == "py-fastapi-uv" {
					cmd := exec.Command("sh", "-c", `cd / && exec python3 -c 'import sys; print(sys.executable)'`)
					py, err := cmd.Output()
					if err != nil {
						return err
					}
					lock := exec.Command(strings.TrimSpace(string(py)), "-m", "uv", "lock")
					lock.Dir = dir
					if err := runQuiet(lock); err != nil {
						return fmt.Errorf("uv lock: %w", err)
					}
				}
				if ex == "image" && !rootfsCold {
					// The base was unpacked once, by an earlier build
					// (a hard-linked copy of that unpack).
					if err := os.MkdirAll(dir+"-cache", 0o755); err != nil {
						return err
					}
					if err := exec.Command("cp", "-al", filepath.Join(tmp, "unpacked", f.fixture, "rootfs"), dir+"-cache/").Run(); err != nil {
						return err
					}
				}
				build := func() error {
					cmd := exec.Command(packer, "build", "-q", dir, "--executor", ex, "--base", f.base, "--cache-dir", dir+"-cache", "-o", "oci:"+dir+"-out", "-t", "app:v1", "--sbom", "none")
					cmd.Env = env
					return runQuiet(cmd)
				}
				d, err := timeIt(build)
				if err != nil {
					return fmt.Errorf("%s cold, executor %s: %w", f.name, ex, err)
				}
				times["cold "+ex] = append(times["cold "+ex], d)
				src := filepath.Join(dir, f.edit)
				b, _ := os.ReadFile(src)
				if err := os.WriteFile(src, []byte(strings.Replace(string(b), "hello from", fmt.Sprintf("hello (%d) from", i), 1)), 0o644); err != nil {
					return err
				}
				if d, err = timeIt(build); err != nil {
					return fmt.Errorf("%s rebuild, executor %s: %w", f.name, ex, err)
				}
				times["warm "+ex] = append(times["warm "+ex], d)
			}
		}
		ch, ci, wh, wi := median(times["cold host"]), median(times["cold image"]), median(times["warm host"]), median(times["warm image"])
		fmt.Printf("%-26s %12s %12s %6.2fx %14s %14s %6.2fx\n", f.name, ch.Round(time.Millisecond), ci.Round(time.Millisecond), ci.Seconds()/ch.Seconds(),
			wh.Round(time.Millisecond), wi.Round(time.Millisecond), wi.Seconds()/wh.Seconds())
	}
	if rootfsCold {
		fmt.Println("cold = empty packer cache, the base's unpack included for image; the package managers' download caches are warm on both sides")
	} else {
		fmt.Println("cold = empty packer cache but the base already unpacked (once per base digest, above) for image; the package managers' download caches are warm on both sides")
	}
	return nil
}
