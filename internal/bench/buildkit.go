package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/packer-build/packer/internal/testutil"
)

// buildkitSuite: the go-server fixture for linux/amd64 and linux/arm64,
// built by packer's own engine and by --builder buildkit against a local
// buildkitd (runc worker, overlayfs) in the same run, interleaved: a cold
// build (an empty packer cache; a fresh buildkitd state) and a one-line
// rebuild. BuildKit solves both platforms in one request, each cross-
// compiled in the Go build image on the daemon's platform.
func buildkitSuite(packer string, runs int) error {
	bk, err := exec.LookPath("buildkitd")
	if err != nil {
		return fmt.Errorf("buildkitd not on PATH (scripts/tools.sh builds it): %w", err)
	}
	goBase, err := testutil.EnsureGoBuilderBase()
	if err != nil {
		return fmt.Errorf("Go builder test base: %w", err)
	}
	packer, _ = filepath.Abs(packer)
	reg, stop, err := startRegistry()
	if err != nil {
		return err
	}
	defer stop()
	goImage := reg + "/bench/golang:1"
	if err := runQuiet(exec.Command("skopeo", "copy", "-q", "--dest-tls-verify=false", goBase, "docker://"+goImage)); err != nil {
		return fmt.Errorf("pushing the Go build image: %w", err)
	}
	tmp := mustTemp()
	defer os.RemoveAll(tmp)
	daemon := func() (string, func(), error) { return testutil.StartBuildkitd(bk, reg) }
	var coldP, coldB, warmP, warmB []time.Duration
	for i := 0; i < runs; i++ {
		dir := filepath.Join(tmp, fmt.Sprintf("go-%d", i))
		if err := exec.Command("cp", "-a", filepath.Join("testdata", "fixtures", "go-server"), dir).Run(); err != nil {
			return err
		}
		planOut, err := exec.Command(packer, "plan", dir, "--json").Output()
		if err != nil {
			return err
		}
		plan := filepath.Join(tmp, fmt.Sprintf("plan-%d.json", i))
		if err := os.WriteFile(plan, []byte(strings.Replace(string(planOut), `"buildImage": "golang:1.22"`, `"buildImage": "`+goImage+`"`, 1)), 0o644); err != nil {
			return err
		}
		addr, stopBK, err := daemon()
		if err != nil {
			return err
		}
		build := func(args ...string) func() error {
			return func() error {
				return runQuiet(exec.Command(packer, append([]string{"build", "-q", dir, "--plan", plan, "--platform", "linux/amd64,linux/arm64",
					"-o", "oci:" + filepath.Join(tmp, fmt.Sprintf("out-%d", i))}, args...)...))
			}
		}
		own := build("--cache-dir", filepath.Join(tmp, fmt.Sprintf("cache-%d", i)))
		viaBK := build("--cache-dir", filepath.Join(tmp, fmt.Sprintf("bkcache-%d", i)), "--builder", "buildkit", "--buildkit-addr", addr)
		edit := func(n int) error {
			src := filepath.Join(dir, "main.go")
			b, _ := os.ReadFile(src)
			return os.WriteFile(src, bytes.Replace(b, []byte("hello from packer"), []byte(fmt.Sprintf("hello (%d) from packer", n)), 1), 0o644)
		}
		// Interleaved, alternating which goes first.
		pairs := [][2]func() error{{own, viaBK}, {viaBK, own}}[i%2]
		for _, step := range []struct {
			name string
			prep func() error
			outs [2]*[]time.Duration
		}{
			{"cold", func() error { return nil }, [2]*[]time.Duration{&coldP, &coldB}},
			{"one-line", func() error { return edit(i) }, [2]*[]time.Duration{&warmP, &warmB}},
		} {
			if err := step.prep(); err != nil {
				stopBK()
				return err
			}
			for j, f := range pairs {
				d, err := timeIt(f)
				if err != nil {
					stopBK()
					return fmt.Errorf("%s build: %w", step.name, err)
				}
				who := j
				if i%2 == 1 {
					who = 1 - j
				}
				*step.outs[who] = append(*step.outs[who], d)
			}
		}
		stopBK()
	}
	fmt.Printf("\n## go-server for linux/amd64 + linux/arm64: packer's engine vs --builder buildkit (medians of %d, interleaved)\n", runs)
	fmt.Printf("%-24s %12s %12s %8s\n", "build", "packer", "buildkit", "ratio")
	fmt.Printf("%-24s %12s %12s %7.2f×\n", "cold", median(coldP).Round(time.Millisecond), median(coldB).Round(time.Millisecond), float64(median(coldB))/float64(median(coldP)))
	fmt.Printf("%-24s %12s %12s %7.2f×\n", "one-line rebuild", median(warmP).Round(time.Millisecond), median(warmB).Round(time.Millisecond), float64(median(warmB))/float64(median(warmP)))
	fmt.Println("cold: an empty packer cache (this machine's Go build cache stays warm) and a fresh buildkitd (its Go cache mount empty); ratio = buildkit / packer")
	return nil
}
