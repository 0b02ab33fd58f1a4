package e2e

import (
	"bufio"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/packer-build/packer/internal/testutil"
)

// TestInterruptDuringLayerWrite: SIGTERM while packer writes a large
// layer stops it within a second with exit code 143, publishes nothing,
// and leaves no temp files (staging copy, partial cache blob, layout).
func TestInterruptDuringLayerWrite(t *testing.T) {
	dir := testutil.CopyFixture(t, "go-server")
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "index.html"), []byte("<p>hi</p>"), 0o644)
	// 400 MB that gzip cannot shrink: several seconds of layer writing.
	big, err := os.Create(filepath.Join(dir, "data.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(big, rand.NewChaCha8([32]byte{1}), 400<<20); err != nil {
		t.Fatal(err)
	}
	big.Close()

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
	dir := testutil.CopyFixture(t, "go-server")
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "index.html"), []byte("<p>hi</p>"), 0o644)
	big, err := os.Create(filepath.Join(dir, "data.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.CopyN(big, rand.NewChaCha8([32]byte{2}), 200<<20); err != nil {
		t.Fatal(err)
	}
	big.Close()
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
