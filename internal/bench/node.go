package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/packer-build/packer/internal/testutil"
)

// nodeOnly filters the node suite's rows (-only).
var nodeOnly string

// nodeSuite: per Node.js and Python fixture, a cold build (empty packer cache; npm's
// own download cache is the machine's), a one-file rebuild and the image
// size, on the Debian 13 test base.
func nodeSuite(packer string, runs int) error {
	base, err := testutil.EnsureDebianBase()
	if err != nil {
		return fmt.Errorf("Debian test base: %w", err)
	}
	packer, _ = filepath.Abs(packer)
	type fx struct {
		name, fixture, edit, variant string
		lock                         []string // python3 -m ... run in the copy first
		args                         []string // extra packer build arguments
	}
	fixtures := []fx{
		{"express (npm)", "node-express", "server.js", "", nil, nil},
		{"fastify (pnpm)", "node-fastify-pnpm", "server.js", "", nil, nil},
		{"typescript build (npm)", "node-ts-build", "src/server.ts", "", nil, nil},
		{"nestjs (npm)", "node-nest", "src/app.controller.ts", "", nil, nil},
		{"hono (bun)", "node-hono-bun", "server.js", "", nil, nil},
		{"npm workspace api", "node-npm-workspace", "packages/lib/index.js", "", nil, []string{"--target", "packages/api"}},
		{"vite react spa (npm)", "node-vite-spa", "src/main.jsx", "", nil, nil},
		{"next.js standalone", "node-next-standalone", "app/page.js", "", nil, nil},
		{"next.js next start", "node-next-standalone", "app/page.js", "no-standalone", nil, nil},
		{"flask (requirements.txt)", "py-flask", "app.py", "", nil, nil},
		{"fastapi (uv.lock)", "py-fastapi-uv", "main.py", "", []string{"uv", "lock"}, nil},
		{"django (Pipfile.lock)", "py-django-pipenv", "mysite/urls.py", "", []string{"pipenv", "lock"}, nil},
	}
	tmp := mustTemp()
	defer os.RemoveAll(tmp)
	env := append(os.Environ(), "COREPACK_INTEGRITY_KEYS=0", "COREPACK_ENABLE_DOWNLOAD_PROMPT=0", "NEXT_TELEMETRY_DISABLED=1")
	fmt.Printf("\n## Node.js and Python fixtures on the Debian 13 base (medians of %d)\n", runs)
	fmt.Printf("%-24s %10s %14s %16s %10s %8s %12s %12s\n", "fixture", "cold", "first rebuild", "one-file rebuild", "steps", "ratio", "image", "packer layers")
	for _, f := range fixtures {
		switch nodeOnly {
		case "all":
		case "":
			// B2's and B4's fixtures.
			if !strings.HasPrefix(f.name, "express") && !strings.HasPrefix(f.name, "nestjs") && !strings.HasPrefix(f.name, "flask") && !strings.HasPrefix(f.name, "fastapi") {
				continue
			}
		default:
			if !strings.Contains(f.name, nodeOnly) {
				continue
			}
		}
		var cold, first, warm, steps []time.Duration
		var total, ours int64
		for i := 0; i < runs; i++ {
			dir := filepath.Join(tmp, fmt.Sprintf("%s-%s-%d", f.fixture, f.variant, i))
			if err := exec.Command("cp", "-a", filepath.Join("testdata", "fixtures", f.fixture), dir).Run(); err != nil {
				return err
			}
			if f.lock != nil {
				py, err := exec.Command("sh", "-c", "cd / && python3 -c 'import sys; print(sys.executable)'").Output()
				if err != nil {
					return err
				}
				cmd := exec.Command(strings.TrimSpace(string(py)), append([]string{"-m"}, f.lock...)...)
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "PIPENV_VENV_IN_PROJECT=0", "PIPENV_IGNORE_VIRTUALENVS=1")
				if err := runQuiet(cmd); err != nil {
					return fmt.Errorf("%s: %w", f.name, err)
				}
			}
			if f.variant == "no-standalone" {
				cfg := filepath.Join(dir, "next.config.mjs")
				b, _ := os.ReadFile(cfg)
				if err := os.WriteFile(cfg, bytes.Replace(b, []byte("output: 'standalone',"), nil, 1), 0o644); err != nil {
					return err
				}
			}
			cache := filepath.Join(dir + "-cache")
			out := filepath.Join(dir + "-out")
			build := func() error {
				cmd := exec.Command(packer, append([]string{"build", "-q", dir, "--base", base, "--cache-dir", cache, "-o", "oci:" + out, "-t", "app:v1"}, f.args...)...)
				cmd.Env = env
				return runQuiet(cmd)
			}
			d, err := timeIt(build)
			if err != nil {
				return fmt.Errorf("%s cold: %w", f.name, err)
			}
			cold = append(cold, d)
			src := filepath.Join(dir, f.edit)
			orig, _ := os.ReadFile(src)
			// Two one-file rebuilds: the first also extracts the cached
			// dev dependencies into the cache once (for the links every
			// later build gets), the second is the steady state. Its
			// steps' own time comes from --progress json's step-done
			// events.
			for k := 1; k <= 2; k++ {
				if err := os.WriteFile(src, []byte(strings.Replace(string(orig), "hello from", fmt.Sprintf("hello (%d-%d) from", i, k), 1)), 0o644); err != nil {
					return err
				}
				var events bytes.Buffer
				cmd := exec.Command(packer, append([]string{"build", dir, "--base", base, "--cache-dir", cache, "-o", "oci:" + out, "-t", "app:v1", "--progress", "json"}, f.args...)...)
				cmd.Env, cmd.Stderr = env, &events
				start := time.Now()
				if err := cmd.Run(); err != nil {
					return fmt.Errorf("%s rebuild: %w\n%s", f.name, err, events.String())
				}
				d = time.Since(start)
				if k == 1 {
					first = append(first, d)
					continue
				}
				warm = append(warm, d)
				steps = append(steps, stepTime(events.Bytes()))
			}
			total, ours, err = imageSize(out)
			if err != nil {
				return err
			}
		}
		ratio := "-"
		if st := median(steps); st > 0 {
			ratio = fmt.Sprintf("%.2f×", float64(median(warm))/float64(st))
		}
		fmt.Printf("%-24s %10s %14s %16s %10s %8s %10.1fMB %10.1fMB\n", f.name, median(cold).Round(time.Millisecond), median(first).Round(time.Millisecond),
			median(warm).Round(time.Millisecond), median(steps).Round(time.Millisecond), ratio, float64(total)/1e6, float64(ours)/1e6)
	}
	fmt.Println("first rebuild = the first one-file rebuild after the cold build; one-file rebuild = the next one; steps = what its steps took themselves (rebuild/steps: #16's goal ≤ 1.3× for a build step)")
	fmt.Println("image = all compressed layers incl. the 262 MB (uncompressed) Debian base; packer layers = the layers packer added")
	return nil
}

// stepTime sums the durations of --progress json's step-done events.
func stepTime(events []byte) time.Duration {
	var total time.Duration
	for _, line := range bytes.Split(events, []byte("\n")) {
		var e struct {
			Type       string `json:"type"`
			DurationNs int64  `json:"durationNs"`
		}
		if json.Unmarshal(line, &e) == nil && e.Type == "step-done" {
			total += time.Duration(e.DurationNs)
		}
	}
	return total
}

// imageSize returns the compressed size of all layers and of the layers
// packer added (those after the base's one layer).
func imageSize(dir string) (total, ours int64, err error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return 0, 0, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return 0, 0, err
	}
	var d v1.Descriptor
	for _, m := range im.Manifests {
		if m.Annotations["org.opencontainers.image.ref.name"] != "" {
			d = m // the tagged image, not an SBOM referrer
		}
	}
	img, err := idx.Image(d.Digest)
	if err != nil {
		return 0, 0, err
	}
	m, err := img.Manifest()
	if err != nil {
		return 0, 0, err
	}
	for i, l := range m.Layers {
		total += l.Size
		if i > 0 {
			ours += l.Size
		}
	}
	return total, ours, nil
}
