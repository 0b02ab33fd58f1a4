package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/packer-build/packer/internal/testutil"
	"github.com/packer-build/packer/layers"
)

// b2Suite is B2 as a CI job sees it: the Express and NestJS fixtures
// pushed to a registry that already holds the base, through a proxy that
// counts the uploaded bytes. Per fixture and round: cold (empty packer
// cache), no-change, one-file, lockfile bump (a dependency added with
// npm install --package-lock-only before the timed build); time, bytes
// uploaded, image size. The cold build is set against its floor: the
// installer and build steps' own time (--progress json) plus compressing
// the layers packer added with packer's layer writer, measured on those
// very layers in the same run.
func b2Suite(packer string, runs int) error {
	base, err := testutil.EnsureDebianBase()
	if err != nil {
		return fmt.Errorf("Debian test base: %w", err)
	}
	packer, _ = filepath.Abs(packer)
	reg, stop, err := startRegistry()
	if err != nil {
		return err
	}
	defer stop()
	target, _ := url.Parse("http://" + reg)
	p := &countingProxy{target: target}
	srv := httptest.NewServer(p)
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	baseRef := reg + "/base/debian:13"
	if err := pushLayout(base, baseRef); err != nil {
		return fmt.Errorf("pushing the base: %w", err)
	}
	tmp := mustTemp()
	defer os.RemoveAll(tmp)
	env := append(os.Environ(), "COREPACK_ENABLE_DOWNLOAD_PROMPT=0")
	type row struct {
		d, floor    []time.Duration
		bytes, size []int64
	}
	phases := []string{"cold", "no-change", "one-file", "lockfile bump"}
	fmt.Printf("\n## B2 Node.js pushed to a registry holding the base (%s; medians of %d)\n", registryKind, runs)
	fmt.Printf("%-10s %-14s %10s %14s %10s %18s\n", "fixture", "build", "time", "bytes pushed", "image", "cold / floor")
	for _, f := range []struct{ name, fixture, edit string }{
		{"express", "node-express", "server.js"},
		{"nestjs", "node-nest", "src/app.controller.ts"},
	} {
		rows := map[string]*row{}
		for _, ph := range phases {
			rows[ph] = &row{}
		}
		for i := 0; i < runs; i++ {
			dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", f.fixture, i))
			if err := exec.Command("cp", "-a", filepath.Join("testdata", "fixtures", f.fixture), dir).Run(); err != nil {
				return err
			}
			cache := dir + "-cache"
			ref := fmt.Sprintf("%s/bench/%s-%d:v1", host, f.name, i)
			meta := dir + "-meta.json"
			for _, ph := range phases {
				switch ph {
				case "one-file":
					src := filepath.Join(dir, f.edit)
					b, _ := os.ReadFile(src)
					if err := os.WriteFile(src, bytes.Replace(b, []byte("hello from"), []byte(fmt.Sprintf("hello (%d) from", i)), 1), 0o644); err != nil {
						return err
					}
				case "lockfile bump":
					cmd := exec.Command("npm", "install", "--package-lock-only", "--no-audit", "--no-fund", "is-number@7.0.0")
					cmd.Dir = dir
					if err := runQuiet(cmd); err != nil {
						return fmt.Errorf("%s: bumping the lockfile: %w", f.name, err)
					}
				}
				p.reset()
				var events bytes.Buffer
				cmd := exec.Command(packer, "build", dir, "--base", host+"/base/debian:13", "--cache-dir", cache, "-t", ref, "--push",
					"--metadata-file", meta, "--progress", "json")
				cmd.Env, cmd.Stderr = env, &events
				start := time.Now()
				if err := cmd.Run(); err != nil {
					return fmt.Errorf("%s %s: %w\n%s", f.name, ph, err, events.String())
				}
				d := time.Since(start)
				r := rows[ph]
				r.d = append(r.d, d)
				p.mu.Lock()
				r.bytes = append(r.bytes, p.blobBytes+p.manBytes)
				p.mu.Unlock()
				size, ours, err := pushedSize(strings.Replace(ref, host, reg, 1))
				if err != nil {
					return err
				}
				r.size = append(r.size, size)
				if ph == "cold" {
					c, err := compressTime(ours)
					if err != nil {
						return err
					}
					r.floor = append(r.floor, stepTime(events.Bytes())+c)
				}
			}
		}
		for _, ph := range phases {
			r := rows[ph]
			ratio := ""
			if len(r.floor) > 0 {
				ratio = fmt.Sprintf("%.2f× (floor %s)", median(r.d).Seconds()/median(r.floor).Seconds(), median(r.floor).Round(time.Millisecond))
			}
			fmt.Printf("%-10s %-14s %10s %14s %8.1fMB %18s\n", f.name, ph, median(r.d).Round(time.Millisecond), humanBytes(medianInt(r.bytes)), float64(medianInt(r.size))/1e6, ratio)
		}
	}
	fmt.Println("bytes pushed = request bodies of blob uploads and manifest PUTs; image = compressed layers incl. the Debian base (mounted from its repository, not uploaded)")
	fmt.Println("floor = the steps' own time + compressing the layers packer added (packer's writer on those layers' tars, same run); NestJS's dev dependencies (a cache-only layer) are compressed too but not counted in the floor")
	return nil
}

// pushLayout copies the image of an oci:DIR:TAG reference to ref.
func pushLayout(layoutRef, ref string) error {
	img, err := testutil.LayoutImage(layoutRef)
	if err != nil {
		return err
	}
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}

// pushedSize returns the compressed size of the image at ref, and the
// layers after the base's (its first).
func pushedSize(ref string) (int64, []v1.Layer, error) {
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		return 0, nil, err
	}
	img, err := remote.Image(r)
	if err != nil {
		return 0, nil, err
	}
	ls, err := img.Layers()
	if err != nil {
		return 0, nil, err
	}
	var total int64
	for _, l := range ls {
		s, err := l.Size()
		if err != nil {
			return 0, nil, err
		}
		total += s
	}
	return total, ls[1:], nil
}

// compressTime is how long packer's layer writer takes to compress the
// layers' tars (read into memory first, so only the writer is timed).
func compressTime(ls []v1.Layer) (time.Duration, error) {
	store, err := layers.NewStore(mustTemp())
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(store.Dir)
	var total time.Duration
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return 0, err
		}
		d, err := timeIt(func() error {
			_, err := store.Write(context.Background(), func(w io.Writer) error { _, err := w.Write(b); return err })
			return err
		})
		if err != nil {
			return 0, err
		}
		total += d
	}
	return total, nil
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	p.blobBytes, p.manBytes, p.blobs = 0, 0, 0
	p.mu.Unlock()
}

func medianInt(xs []int64) int64 {
	ds := make([]time.Duration, len(xs))
	for i, x := range xs {
		ds[i] = time.Duration(x)
	}
	return int64(median(ds))
}

func humanBytes(n int64) string {
	switch {
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
