package e2e

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/packer-build/packer/internal/testutil"
)

// bigContext is the go-server fixture with the templates sourcePlan
// stages and a file of size random bytes (gzip cannot shrink them, so
// writing its layer takes a while).
func bigContext(t *testing.T, size int64) string {
	t.Helper()
	dir := testutil.CopyFixture(t, "go-server")
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "index.html"), []byte("<p>hi</p>"), 0o644)
	big, err := os.Create(filepath.Join(dir, "data.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer big.Close()
	if _, err := io.CopyN(big, rand.NewChaCha8([32]byte{1}), size); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestInterruptDuringLayerWrite: SIGTERM while packer writes a large
// layer stops it within a second with exit code 143, publishes nothing,
// and leaves no temp files (staging copy, partial cache blob, layout).
func TestInterruptDuringLayerWrite(t *testing.T) {
	// 400 MB that gzip cannot shrink: several seconds of layer writing.
	dir := bigContext(t, 400<<20)

	tmp := t.TempDir() // the process's TMPDIR: the staging copy lives here
	cache := t.TempDir()
	out := filepath.Join(t.TempDir(), "layout")
	cmd := exec.Command(packerBin, "build", dir, "--plan", sourcePlan(t), "--cache-dir", cache, "-o", "oci:"+out, "-t", "app:v1")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		log.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "step build (linux/amd64): done") {
			break // the layers are written next, the 400 MB one last
		}
	}
	time.Sleep(100 * time.Millisecond) // into hashing and writing the big layer
	sent := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(stderr)
	log.Write(rest)
	err = cmd.Wait()
	took := time.Since(sent)
	t.Logf("exited %s after SIGTERM", took.Round(time.Millisecond))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Errorf("exit = %v, want code 143\n%s", err, log.String())
	}
	if took > time.Second {
		t.Errorf("took %s to stop after SIGTERM, want at most 1 s", took)
	}
	if strings.Contains(log.String(), "built sha256:") || strings.Contains(log.String(), "wrote OCI layout") {
		t.Errorf("the build went on after SIGTERM:\n%s", log.String())
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "interrupted by SIGTERM") {
		t.Errorf("last line %q does not name the cause", last)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a layout was written")
	}
	for _, d := range []string{tmp, filepath.Join(cache, "tmp"), filepath.Dir(out)} {
		ents, _ := os.ReadDir(d)
		for _, e := range ents {
			t.Errorf("left behind: %s", filepath.Join(d, e.Name()))
		}
	}
}

// TestKilledBuildReclaimed: a build killed with SIGKILL mid-write leaves
// its staging copy and a partial layer behind; the next build removes
// them (their process is gone) and gives the digest of a clean build.
func TestKilledBuildReclaimed(t *testing.T) {
	t.Parallel()
	dir := bigContext(t, 200<<20)
	plan := sourcePlan(t)
	tmp, cache := t.TempDir(), t.TempDir()
	cmd := exec.Command(packerBin, "build", dir, "--plan", plan, "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "killed"), "-t", "app:v1")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, "SOURCE_DATE_EPOCH=1700000000")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if strings.Contains(sc.Text(), "step build (linux/amd64): done") {
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // into writing the big layer
	cmd.Process.Kill()
	io.Copy(io.Discard, stderr)
	cmd.Wait()
	left := func() []string {
		var out []string
		for _, d := range []string{tmp, filepath.Join(cache, "tmp")} {
			ents, _ := os.ReadDir(d)
			for _, e := range ents {
				out = append(out, filepath.Join(filepath.Base(d), e.Name()))
			}
		}
		return out
	}
	before := left()
	if len(before) == 0 {
		t.Skip("SKIP: the killed build left nothing behind (it had finished or not started writing)")
	}
	build := func(tmp, cache string) string {
		t.Helper()
		c := exec.Command(packerBin, "build", dir, "--plan", plan, "--cache-dir", cache, "-o", "oci:"+filepath.Join(t.TempDir(), "out"), "-t", "app:v1")
		c.Env = append(os.Environ(), "TMPDIR="+tmp, "SOURCE_DATE_EPOCH=1700000000")
		out, err := c.Output()
		if err != nil {
			t.Fatalf("build after the kill: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	after := build(tmp, cache)
	if rest := left(); len(rest) != 0 {
		t.Errorf("left behind after the next build: %v (the killed one left %v)", rest, before)
	}
	if clean := build(t.TempDir(), t.TempDir()); clean != after {
		t.Errorf("the build after the kill gave %s, a clean one %s", after, clean)
	}
}

// TestInterruptPhases: SIGTERM while a step runs, while the layout is
// written, and while a push waits on a registry that stopped answering, exits 143 within a second, says
// what was interrupted, and publishes nothing (no layout, no tag).
func TestInterruptPhases(t *testing.T) {
	t.Parallel()
	// A proxy in front of the real registry process that holds every
	// manifest PUT: the push is stuck there when the signal comes.
	reg := startRegistry(t, "")
	stall := make(chan struct{})
	var stalled sync.Once
	reached := make(chan struct{})
	target, _ := url.Parse("http://" + reg)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/manifests/") {
			stalled.Do(func() { close(reached) })
			<-stall
			return
		}
		httputil.NewSingleHostReverseProxy(target).ServeHTTP(w, r)
	}))
	t.Cleanup(func() { close(stall); proxy.Close() })
	proxyHost := strings.TrimPrefix(proxy.URL, "http://")

	slowStep := writePlan(t, map[string]any{
		"provider": "custom", "base": "builtin:static",
		"steps":      []any{map[string]any{"name": "slow", "run": []string{"sh", "-c", "echo started; sleep 60"}, "output": "."}},
		"layers":     []any{map[string]any{"name": "app", "from": "slow", "include": []string{"main.go"}, "dest": "/app"}},
		"entrypoint": []string{"/app/none"}, "user": "65532:65532", "workingDir": "/app",
	})
	// The layout phase: a 400 MB layer that gzip cannot shrink is being
	// copied into the layout when the image's digest is logged.
	bigLayer := writePlan(t, map[string]any{
		"provider": "custom", "base": "builtin:static",
		"layers":     []any{map[string]any{"name": "app", "from": "src", "include": []string{"data.bin"}, "dest": "/app"}},
		"entrypoint": []string{"/app/none"}, "user": "65532:65532", "workingDir": "/app",
	})
	for _, c := range []struct {
		phase, plan, waitFor string
		args                 []string
		reached              chan struct{}
		size                 int64
	}{
		{"step", slowStep, "started", []string{"-o", "oci:LAYOUT", "-t", "app:v1"}, nil, 0},
		{"layout", bigLayer, "packer: built sha256:", []string{"-o", "oci:LAYOUT", "-t", "app:v1", "--sbom", "none"}, nil, 400 << 20},
		{"push", sourcePlan(t), "", []string{"-t", proxyHost + "/app:v1", "--push", "--sbom", "none"}, reached, 0},
	} {
		t.Run(c.phase, func(t *testing.T) {
			dir := bigContext(t, c.size)
			layout := filepath.Join(t.TempDir(), "layout")
			args := []string{"build", dir, "--plan", c.plan, "--cache-dir", t.TempDir()}
			for _, a := range c.args {
				args = append(args, strings.ReplaceAll(a, "LAYOUT", layout))
			}
			cmd := exec.Command(packerBin, args...)
			cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
			stderr, _ := cmd.StderrPipe()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var log strings.Builder
			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			timeout := time.After(60 * time.Second)
		wait:
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatalf("packer ended before the %s phase:\n%s", c.phase, log.String())
					}
					log.WriteString(l + "\n")
					if c.waitFor != "" && strings.Contains(l, c.waitFor) {
						break wait
					}
				case <-c.reached:
					break wait
				case <-timeout:
					cmd.Process.Kill()
					t.Fatalf("the %s phase never came:\n%s", c.phase, log.String())
				}
			}
			sent := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			for l := range lines {
				log.WriteString(l + "\n")
			}
			err := cmd.Wait()
			took := time.Since(sent)
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 143 || took > time.Second {
				t.Errorf("%s: exit %v after %s; want 143 within 1s\n%s", c.phase, err, took, log.String())
			}
			out := strings.Split(strings.TrimSpace(log.String()), "\n")
			if last := out[len(out)-1]; !strings.Contains(last, "interrupted by SIGTERM") {
				t.Errorf("%s: last line %q does not name the cause", c.phase, last)
			}
			if _, err := os.Stat(layout); err == nil {
				t.Errorf("%s: a layout was written", c.phase)
			}
			if left, _ := filepath.Glob(filepath.Join(filepath.Dir(layout), ".packer-layout-*")); len(left) > 0 {
				t.Errorf("%s: a half-written layout was left: %v", c.phase, left)
			}
			if resp, err := http.Get("http://" + reg + "/v2/app/manifests/v1"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					t.Errorf("%s: the tag was pushed", c.phase)
				}
			}
		})
	}
}
