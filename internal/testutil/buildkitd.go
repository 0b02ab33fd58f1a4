package testutil

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// StartBuildkitd runs buildkitd (bin) as root on tcp://127.0.0.1 with
// its state in a fresh directory: the runc worker with the overlayfs
// snapshotter (the native one works too, but copies the root file system
// for every step: the end-to-end test took 326 s with it, 84 s with
// overlayfs), the host's network, registryHost reached over plain HTTP.
// It returns the address and a stop function.
func StartBuildkitd(bin, registryHost string) (string, func(), error) {
	dir, err := os.MkdirTemp("", "bk-")
	if err != nil {
		return "", nil, err
	}
	cfg := fmt.Sprintf("[worker.oci]\n  enabled = true\n  snapshotter = \"overlayfs\"\n[worker.containerd]\n  enabled = false\n[registry.%q]\n  http = true\n  insecure = true\n", registryHost)
	if err := os.WriteFile(filepath.Join(dir, "buildkitd.toml"), []byte(cfg), 0o644); err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	_ = l.Close()
	cmd := exec.Command(bin, "--root", filepath.Join(dir, "root"), "--addr", "tcp://"+addr,
		"--config", filepath.Join(dir, "buildkitd.toml"), "--oci-worker-net", "host")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }() // interrupted: its status says nothing
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = os.RemoveAll(dir)
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			_ = c.Close()
			return "tcp://" + addr, stop, nil
		}
	}
	stop()
	return "", nil, fmt.Errorf("buildkitd did not start:\n%s", logs.String())
}
