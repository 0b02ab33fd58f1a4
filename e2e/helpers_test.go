// Package e2e runs the packer binary against real tools: a registry server
// process (Debian's docker-registry), skopeo, umoci and runc. Each test
// skips with a clear message when a tool is missing, and fails instead
// under CI=true.
package e2e

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/packer-build/packer/internal/testutil"
)

var packerBin, goCache string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "packer-e2e-bin-")
	if err != nil {
		panic(err)
	}
	os.Chmod(dir, 0o755)
	packerBin = filepath.Join(dir, "packer")
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..")
	cmd := exec.Command("go", "build", "-o", packerBin, "./cmd/packer")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building packer:", err)
		os.Exit(1)
	}
	gc, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go env GOCACHE:", err)
		os.Exit(1)
	}
	goCache = strings.TrimSpace(string(gc))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	err            error
}

// packer runs the packer binary with a private cache and no git context.
func packer(t *testing.T, env []string, args ...string) result {
	t.Helper()
	cmd := exec.Command(packerBin, args...)
	cmd.Env = append(os.Environ(), env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	return result{so.String(), se.String(), err}
}

func mustPacker(t *testing.T, env []string, args ...string) string {
	t.Helper()
	r := packer(t, env, args...)
	if r.err != nil {
		t.Fatalf("packer %s: %v\nstderr:\n%s", strings.Join(args, " "), r.err, r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, so.String(), se.String())
	}
	return so.String()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRegistry runs Debian's docker-registry (distribution 2.8) on a free
// loopback port with storage in a temp dir and returns host:port. extra is
// appended to the config (e.g. an auth section).
func startRegistry(t *testing.T, extra string) string {
	t.Helper()
	bin := testutil.NeedTool(t, "docker-registry", "apt-get install docker-registry")
	dir := t.TempDir()
	port := freePort(t)
	host := fmt.Sprintf("127.0.0.1:%d", port)
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), host, extra)
	cfgPath := filepath.Join(dir, "config.yml")
	os.WriteFile(cfgPath, []byte(cfg), 0o644)
	cmd := exec.Command(bin, "serve", cfgPath)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return host
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("docker-registry did not start on %s:\n%s", host, logs.String())
	return ""
}
