// Command bench measures packer against baselines in the same run and
// prints medians and ratios (make bench). The suites (#16's B1-B6):
//
//	layer     B3: packer's layer writer (tar → pgzip, or zstd → sha256,
//	          one pass) vs `tar | gzip/pigz/zstd | sha256sum` and
//	          go-containerregistry's tarball layer, on GOROOT; peak RSS.
//	ko        B1: go-server and go-gin, cold / no-change / one-file, packer
//	          vs ko, same base, same local registry; `go build` alone.
//	node      B2/B4: Express, NestJS, Flask, FastAPI on the Debian test
//	          base (-only all: every Node.js and Python fixture).
//	b2        B2 pushed: Express and NestJS to a registry holding the base:
//	          time, bytes pushed, image size; cold against its floor.
//	cache     B5: an empty cache dir with --cache-from a registry cache.
//	push      what a one-file change uploads (SBOM share).
//	executor  steps inside the image vs on the host (not in the default).
//	buildkit  --builder buildkit vs packer (not in the default).
//
// Usage: bench [-packer bin/packer] [-runs 5] [-suite layer,ko] [-tree DIR]
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	kgzip "github.com/klauspost/compress/gzip"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/layers"
)

func main() {
	if len(os.Args) > 2 && os.Args[1] == "write-layer" {
		writeLayer(os.Args[2])
		return
	}
	packer := flag.String("packer", "bin/packer", "packer binary")
	runs := flag.Int("runs", 5, "runs per measurement (medians are reported)")
	suites := flag.String("suite", "layer,ko,node,b2,cache,push", "suites to run")
	tree := flag.String("tree", "", "tree for the layer suite (default: GOROOT)")
	rootfsCold := flag.Bool("rootfs-cold", false, "executor suite: count the base's unpack in every cold in-image build")
	fixture := flag.String("fixture", "testdata/fixtures/go-server,testdata/fixtures/go-gin", "Go fixtures for the ko suite (comma-separated)")
	flag.StringVar(&nodeOnly, "only", "", "node suite: only the fixtures whose row name contains this (all: every fixture; default: B2's and B4's)")
	flag.Parse()
	fmt.Printf("# packer bench %s, %d runs each, medians\n", time.Now().UTC().Format("2006-01-02"), *runs)
	for _, s := range strings.Split(*suites, ",") {
		var err error
		switch s {
		case "cache":
			err = cacheSuite(*packer, *runs)
		case "push":
			err = pushSuite(*packer)
		case "b2":
			err = b2Suite(*packer, *runs)
		case "buildkit":
			err = buildkitSuite(*packer, *runs)
		case "layer":
			err = layerSuite(*tree, *runs)
		case "ko":
			for _, f := range strings.Split(*fixture, ",") {
				if err = koSuite(*packer, f, *runs); err != nil {
					break
				}
			}
		case "node":
			err = nodeSuite(*packer, *runs)
		case "executor":
			err = executorSuite(*packer, *runs, *rootfsCold)
		default:
			err = fmt.Errorf("unknown suite %q", s)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration{}, ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func timeIt(f func() error) (time.Duration, error) {
	start := time.Now()
	err := f()
	return time.Since(start), err
}

// ---- layer suite ----

type layerResult struct {
	Bytes   int64  `json:"bytes"`
	Digest  string `json:"digest"`
	Seconds float64
}

// writeLayer is the child process: one packer layer of dir into a temp store.
func writeLayer(dir string) {
	store, err := layers.NewStore(mustTemp())
	if err != nil {
		panic(err)
	}
	store.Compression = os.Getenv("PACKER_BENCH_COMPRESSION")
	defer os.RemoveAll(store.Dir)
	files, err := layers.Collect(dir, nil, nil)
	if err != nil {
		panic(err)
	}
	var n int64
	for _, f := range files {
		n += f.Size
	}
	l, err := store.Write(context.Background(), func(w io.Writer) error { return layers.WriteTar(w, files, layers.Spec{Dest: "/tree"}) })
	if err != nil {
		panic(err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(layerResult{Bytes: n, Digest: l.Desc.Digest.String()}); err != nil {
		panic(err)
	}
}

func mustTemp() string {
	d, err := os.MkdirTemp("", "packer-bench-")
	if err != nil {
		panic(err)
	}
	return d
}

func layerSuite(tree string, runs int) error {
	if tree == "" {
		out, err := exec.Command("go", "env", "GOROOT").Output()
		if err != nil {
			return err
		}
		tree = strings.TrimSpace(string(out))
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// Warm the page cache so every contender reads from memory.
	if err := exec.Command("tar", "-cf", "/dev/null", "-C", tree, ".").Run(); err != nil {
		return fmt.Errorf("reading %s: %w", tree, err)
	}

	var packerT, shellT, ggcrT, pigzT, zstdT, oneT, zT []time.Duration
	var cores []float64
	var maxRSS int64
	var res layerResult
	for i := 0; i < runs; i++ {
		var out bytes.Buffer
		cmd := exec.Command(self, "write-layer", tree)
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		d, err := timeIt(cmd.Run)
		if err != nil {
			return fmt.Errorf("packer layer writer: %w", err)
		}
		packerT = append(packerT, d)
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok && ru.Maxrss > maxRSS {
			maxRSS = ru.Maxrss // KiB on Linux
		}
		cores = append(cores, (cmd.ProcessState.UserTime()+cmd.ProcessState.SystemTime()).Seconds()/d.Seconds())
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			return fmt.Errorf("packer layer writer output: %w", err)
		}

		d, err = timeIt(exec.Command("bash", "-c", `set -o pipefail; tar -cf - -C "$1" . | gzip -6 | sha256sum >/dev/null`, "bash", tree).Run)
		if err != nil {
			return fmt.Errorf("tar | gzip -6 | sha256sum: %w", err)
		}
		shellT = append(shellT, d)

		zcmd := exec.Command(self, "write-layer", tree)
		zcmd.Env = append(os.Environ(), "PACKER_BENCH_COMPRESSION=zstd")
		zcmd.Stdout, zcmd.Stderr = io.Discard, os.Stderr
		d, err = timeIt(zcmd.Run)
		if err != nil {
			return fmt.Errorf("packer zstd layer writer: %w", err)
		}
		zT = append(zT, d)

		d, err = timeIt(func() error { return singleGzip(tree) })
		if err != nil {
			return fmt.Errorf("single-core gzip: %w", err)
		}
		oneT = append(oneT, d)

		d, err = timeIt(func() error { return ggcrLayer(tree) })
		if err != nil {
			return fmt.Errorf("ggcr tarball layer: %w", err)
		}
		ggcrT = append(ggcrT, d)
		// The floors on every core: pigz -6 and zstd -T0 -3 (apt pigz zstd).
		for _, floor := range []struct {
			tool, pipe string
			into       *[]time.Duration
		}{{"pigz", "pigz -6", &pigzT}, {"zstd", "zstd -T0 -3 -q", &zstdT}} {
			if _, err := exec.LookPath(floor.tool); err != nil {
				continue
			}
			d, err = timeIt(exec.Command("bash", "-c", `set -o pipefail; tar -cf - -C "$1" . | `+floor.pipe+` | sha256sum >/dev/null`, "bash", tree).Run)
			if err != nil {
				return fmt.Errorf("tar | %s | sha256sum: %w", floor.pipe, err)
			}
			*floor.into = append(*floor.into, d)
		}
	}
	mb := float64(res.Bytes) / 1e6
	rate := func(d time.Duration) float64 { return mb / d.Seconds() }
	p, s, g := median(packerT), median(shellT), median(ggcrT)
	fmt.Printf("\n## layer writer: %s (%.0f MB of file data)\n", tree, mb)
	fmt.Printf("%-44s %8s %9s %14s\n", "writer", "median", "MB/s", "packer speedup")
	sort.Float64s(cores)
	fmt.Printf("%-44s %8s %9.0f %14s   (%.2f cores)\n", "packer (tar→pgzip-6, 1 MiB blocks→sha256)", p.Round(time.Millisecond), rate(p), "1.00×", cores[len(cores)/2])
	z := median(zT)
	fmt.Printf("%-44s %8s %9.0f %13.2f×\n", "packer --compression zstd (concurrent blocks)", z.Round(time.Millisecond), rate(z), z.Seconds()/p.Seconds())
	o := median(oneT)
	fmt.Printf("%-44s %8s %9.0f %13.2f×\n", "packer before: klauspost gzip-6 on one core", o.Round(time.Millisecond), rate(o), o.Seconds()/p.Seconds())
	fmt.Printf("%-44s %8s %9.0f %13.2f×\n", "tar -c | gzip -6 | sha256sum", s.Round(time.Millisecond), rate(s), s.Seconds()/p.Seconds())
	fmt.Printf("%-44s %8s %9.0f %13.2f×\n", "ggcr tarball.LayerFromOpener (stdlib gzip)", g.Round(time.Millisecond), rate(g), g.Seconds()/p.Seconds())
	if len(pigzT) > 0 {
		f := median(pigzT)
		fmt.Printf("%-44s %8s %9.0f %13.2f×\n", "floor: tar -c | pigz -6 | sha256sum", f.Round(time.Millisecond), rate(f), f.Seconds()/p.Seconds())
	}
	if len(zstdT) > 0 {
		f := median(zstdT)
		fmt.Printf("%-44s %8s %9.0f %13.2f×\n", "floor: tar -c | zstd -T0 -3 | sha256sum", f.Round(time.Millisecond), rate(f), f.Seconds()/p.Seconds())
	}
	fmt.Printf("packer writer peak RSS: %.0f MB (whole process)\n", float64(maxRSS)/1024)
	return nil
}

// singleGzip is the layer writer as it was before pgzip: the same tar
// through klauspost's gzip -6 on one goroutine, with the digest.
func singleGzip(tree string) error {
	files, err := layers.Collect(tree, nil, nil)
	if err != nil {
		return err
	}
	h := sha256.New()
	zw, err := kgzip.NewWriterLevel(h, layers.GzipLevel)
	if err != nil {
		return err
	}
	if err := layers.WriteTar(zw, files, layers.Spec{Dest: "/tree"}); err != nil {
		return err
	}
	return zw.Close()
}

// ggcrLayer is go-containerregistry's own path: a tarball layer from an
// opener, digest and diffID computed, then the compressed bytes read (as a
// push or layout write does).
func ggcrLayer(tree string) error {
	files, err := layers.Collect(tree, nil, nil)
	if err != nil {
		return err
	}
	opener := func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() { pw.CloseWithError(layers.WriteTar(pw, files, layers.Spec{Dest: "/tree"})) }()
		return pr, nil
	}
	l, err := tarball.LayerFromOpener(opener)
	if err != nil {
		return err
	}
	if _, err := l.Digest(); err != nil {
		return err
	}
	if _, err := l.DiffID(); err != nil {
		return err
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}

// ---- ko suite ----

func koSuite(packer, fixture string, runs int) error {
	ko, err := exec.LookPath("ko")
	if err != nil {
		home, _ := os.UserHomeDir()
		if _, serr := os.Stat(filepath.Join(home, "go", "bin", "ko")); serr == nil {
			ko = filepath.Join(home, "go", "bin", "ko")
		} else {
			return fmt.Errorf("ko not found: go install github.com/google/ko@latest")
		}
	}
	packer, _ = filepath.Abs(packer)
	host, stop, err := startRegistry()
	if err != nil {
		return err
	}
	defer stop()

	// The same base for both: packer's static base, pushed to the registry.
	tmp := mustTemp()
	defer os.RemoveAll(tmp)
	store, _ := layers.NewStore(filepath.Join(tmp, "base-store"))
	base, err := builder.StaticBase(context.Background(), store, time.Unix(0, 0), v1.Platform{OS: "linux", Architecture: "amd64"})
	if err != nil {
		return err
	}
	baseRef := host + "/base/static:1"
	ref, _ := name.ParseReference(baseRef, name.Insecure)
	if err := remote.Write(ref, base); err != nil {
		return fmt.Errorf("pushing base: %w", err)
	}

	type tool struct {
		name string
		run  func(dir, gocache, cache string) error
	}
	tools := []tool{
		{"packer", func(dir, gocache, cache string) error {
			cmd := exec.Command(packer, "build", "-q", "--push", "--platform", "linux/amd64", "--base", baseRef,
				"--cache-dir", cache, "-t", host+"/bench/packer-hello:latest", dir)
			cmd.Env = append(os.Environ(), "GOCACHE="+gocache)
			return runQuiet(cmd)
		}},
		{"ko", func(dir, gocache, cache string) error {
			cmd := exec.Command(ko, "build", "--bare", "--sbom=none", "--platform=linux/amd64", "./")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "GOCACHE="+gocache, "KO_DOCKER_REPO="+host+"/bench/ko-hello",
				"KO_DEFAULTBASEIMAGE="+baseRef, "KOCACHE="+cache)
			return runQuiet(cmd)
		}},
	}
	phases := []string{"cold build", "no-change rebuild", "one-file rebuild"}
	var goBuild []time.Duration
	times := map[string]map[string][]time.Duration{}
	for _, t := range tools {
		times[t.name] = map[string][]time.Duration{}
	}
	for i := 0; i < runs; i++ {
		for _, t := range tools {
			dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", t.name, i), "app")
			if err := exec.Command("cp", "-a", fixture, dir).Run(); err != nil {
				if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
					return err
				}
				if err := exec.Command("cp", "-a", fixture, dir).Run(); err != nil {
					return fmt.Errorf("copying fixture: %w", err)
				}
			}
			gocache := filepath.Join(tmp, fmt.Sprintf("%s-%d", t.name, i), "gocache")
			cache := filepath.Join(tmp, fmt.Sprintf("%s-%d", t.name, i), "cache")
			for _, ph := range phases {
				if ph == "one-file rebuild" {
					main := filepath.Join(dir, "main.go")
					b, _ := os.ReadFile(main)
					// The first "hello from … string (go-server's, go-gin's).
					b = bytes.Replace(b, []byte(`"hello from `), []byte(fmt.Sprintf(`"hello (run %d) from `, i)), 1)
					if err := os.WriteFile(main, b, 0o644); err != nil {
						return err
					}
				}
				d, err := timeIt(func() error { return t.run(dir, gocache, cache) })
				if err != nil {
					return fmt.Errorf("%s %s: %w", t.name, ph, err)
				}
				times[t.name][ph] = append(times[t.name][ph], d)
			}
			if t.name == "packer" {
				// The floor for a one-line rebuild: go build alone, the same
				// kind of change, the same (warm) Go cache.
				main := filepath.Join(dir, "main.go")
				b, _ := os.ReadFile(main)
				b = bytes.Replace(b, []byte(fmt.Sprintf(`"hello (run %d) from `, i)), []byte(fmt.Sprintf(`"hello (go build %d) from `, i)), 1)
				if err := os.WriteFile(main, b, 0o644); err != nil {
					return err
				}
				d, err := timeIt(func() error {
					cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", filepath.Join(tmp, "gobuild-out"), ".")
					cmd.Dir = dir
					cmd.Env = append(os.Environ(), "GOCACHE="+gocache, "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
					return runQuiet(cmd)
				})
				if err != nil {
					return fmt.Errorf("go build: %w", err)
				}
				goBuild = append(goBuild, d)
			}
		}
	}
	fmt.Printf("\n## %s fixture → local registry, linux/amd64, same base (%s)\n", filepath.Base(fixture), registryKind)
	fmt.Printf("%-20s %10s %10s %14s\n", "phase", "packer", "ko", "packer/ko")
	for _, ph := range phases {
		p, k := median(times["packer"][ph]), median(times["ko"][ph])
		fmt.Printf("%-20s %10s %10s %14.2f\n", ph, p.Round(time.Millisecond), k.Round(time.Millisecond), p.Seconds()/k.Seconds())
	}
	gb := median(goBuild)
	fmt.Printf("%-20s %10s %10s %14s   (packer one-file / go build: %.2f×)\n", "go build alone", gb.Round(time.Millisecond), "", "", median(times["packer"]["one-file rebuild"]).Seconds()/gb.Seconds())
	return nil
}

func runQuiet(cmd *exec.Cmd) error {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%v\n%s", err, out.String())
	}
	return nil
}

var registryKind = "docker-registry process"

// startRegistry runs Debian's docker-registry on a free loopback port, or
// go-containerregistry's in-process registry when it is not installed.
func startRegistry() (string, func(), error) {
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		registryKind = "in-process ggcr registry; docker-registry not installed"
		s := httptest.NewServer(ggcrregistry.New())
		return strings.TrimPrefix(s.URL, "http://"), s.Close, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	host := l.Addr().String()
	if err := l.Close(); err != nil {
		return "", nil, err
	}
	dir := mustTemp()
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", filepath.Join(dir, "data"), host)
	if err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(cfg), 0o644); err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "serve", filepath.Join(dir, "config.yml"))
	if err := cmd.Start(); err != nil {
		cancel()
		return "", nil, err
	}
	stop := func() { cancel(); _ = cmd.Wait(); os.RemoveAll(dir) } // Wait reports the kill
	for i := 0; i < 150; i++ {
		if resp, err := http.Get("http://" + host + "/v2/"); err == nil {
			resp.Body.Close()
			return host, stop, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return "", nil, fmt.Errorf("docker-registry did not start")
}
