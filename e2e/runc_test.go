package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packer-build/packer/internal/testutil"
)

// container is an image from an OCI layout running under runc.
type container struct {
	t      *testing.T
	id     string
	runc   string
	port   int
	logf   string
	bundle string
}

// runLayout unpacks layoutDir:tag with umoci and starts it with runc in the
// host network namespace, with PORT set to a free port.
func runLayout(t *testing.T, layoutDir, tag string) *container {
	t.Helper()
	umoci := testutil.NeedTool(t, "umoci", "apt-get install umoci")
	runc := testutil.NeedTool(t, "runc", "apt-get install runc")
	if os.Geteuid() != 0 {
		t.Skip("SKIP: runc needs root here; this end-to-end check did not run")
	}
	bundle := filepath.Join(t.TempDir(), "bundle")
	run(t, umoci, "unpack", "--image", layoutDir+":"+tag, bundle)
	port := freePort(t)
	cfgPath := filepath.Join(bundle, "config.json")
	var spec map[string]any
	b, _ := os.ReadFile(cfgPath)
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	var env []any
	for _, e := range proc["env"].([]any) {
		if !strings.HasPrefix(e.(string), "PORT=") {
			env = append(env, e)
		}
	}
	proc["env"] = append(env, fmt.Sprintf("PORT=%d", port))
	linux := spec["linux"].(map[string]any)
	var ns []any
	for _, n := range linux["namespaces"].([]any) {
		if n.(map[string]any)["type"] != "network" {
			ns = append(ns, n)
		}
	}
	linux["namespaces"] = ns
	b, _ = json.Marshal(spec)
	os.WriteFile(cfgPath, b, 0o644)

	c := &container{t: t, id: fmt.Sprintf("packer-e2e-%d", time.Now().UnixNano()), runc: runc, port: port, bundle: bundle}
	logf, _ := os.Create(filepath.Join(t.TempDir(), "container.log"))
	c.logf = logf.Name()
	defer logf.Close()
	cmd := exec.Command(runc, "run", "-d", "--bundle", bundle, c.id)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, logf, logf
	if err := cmd.Run(); err != nil {
		t.Fatalf("runc run: %v\n%s", err, c.log())
	}
	t.Cleanup(func() {
		exec.Command(runc, "kill", c.id, "KILL").Run()
		time.Sleep(200 * time.Millisecond)
		exec.Command(runc, "delete", "--force", c.id).Run()
	})
	return c
}

func (c *container) log() string {
	b, _ := os.ReadFile(c.logf)
	return string(b)
}

// get waits (up to 30 s) for the app to answer and returns status and body.
func (c *container) get(path string) (int, string, http.Header) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", c.port, path))
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return resp.StatusCode, string(b), resp.Header
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("GET %s: no answer in 30s; container log:\n%s", path, c.log())
	return 0, "", nil
}

// uid returns the real uid of the container's first process, as the
// kernel sees it.
func (c *container) uid() string {
	c.t.Helper()
	var pids []int
	json.Unmarshal([]byte(run(c.t, c.runc, "ps", "--format", "json", c.id)), &pids)
	if len(pids) == 0 {
		c.t.Fatalf("runc ps found no process")
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pids[0]))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		if strings.HasPrefix(line, "Uid:") {
			return strings.Fields(line)[1]
		}
	}
	return ""
}

// stop sends SIGTERM and returns how long the container took to exit.
func (c *container) stop() time.Duration {
	c.t.Helper()
	start := time.Now()
	run(c.t, c.runc, "kill", c.id, "TERM")
	for time.Since(start) < 15*time.Second {
		out, _ := exec.Command(c.runc, "state", c.id).Output()
		var st struct{ Status string }
		json.Unmarshal(out, &st)
		if st.Status == "stopped" || len(out) == 0 {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// exists reports whether path exists in the unpacked root filesystem.
func (c *container) exists(path string) bool {
	_, err := os.Lstat(filepath.Join(c.bundle, "rootfs", path))
	return err == nil
}

// zombies lists the container's zombie processes: children of its PID 1
// in state Z, found through the host's /proc (exited tasks leave the
// cgroup, so runc ps does not show them).
func (c *container) zombies() []string {
	c.t.Helper()
	var pids []int
	json.Unmarshal([]byte(run(c.t, c.runc, "ps", "--format", "json", c.id)), &pids)
	if len(pids) == 0 {
		c.t.Fatalf("runc ps found no process")
	}
	initPid := fmt.Sprint(pids[0])
	for _, p := range pids {
		if p < pids[0] {
			initPid = fmt.Sprint(p)
		}
	}
	ents, _ := os.ReadDir("/proc")
	var out []string
	for _, e := range ents {
		st, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		var name, state, ppid string
		for _, line := range strings.Split(string(st), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			switch f[0] {
			case "Name:":
				name = f[1]
			case "State:":
				state = f[1]
			case "PPid:":
				ppid = f[1]
			}
		}
		if ppid == initPid && state == "Z" {
			out = append(out, name+" "+e.Name())
		}
	}
	return out
}
