package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/packer-build/packer/internal/testutil"
)

// TestRuntimeConfigFlags: flags, PACKER_* variables and packer.toml end up
// in the image config and manifest, by precedence, and plan says why.
func TestRuntimeConfigFlags(t *testing.T) {
	dir := testutil.CopyFixture(t, "go-server")
	os.WriteFile(filepath.Join(dir, "packer.toml"), []byte(`# app config
workdir = "/app"
user = "1000:1000"
volumes = ["/var/lib/app"]

health_path = "/healthz"

[env]
FROM_TOML = "toml"
LOG_LEVEL = "info"

[labels]
"org.opencontainers.image.title" = "hello"
`), 0o644)
	envFile := filepath.Join(t.TempDir(), "app.env")
	os.WriteFile(envFile, []byte("# runtime settings\nLOG_LEVEL=debug\nGREETING=hi there\n\nFROM_HOST\n"), 0o644)
	out := filepath.Join(t.TempDir(), "layout")
	env := append(cacheEnv(t), "PACKER_USER=2000:2000", "FROM_HOST=host-value")
	flags := []string{"--port", "9000", "--env-file", envFile, "--env", "EXTRA=1", "--build-arg", "APP_VERSION=7",
		"--label", "team=core", "--annotation", "org.example.owner=core", "--volume", "/data", "--stop-signal", "SIGINT",
		"--healthcheck", `["/app/hello-server", "-health"]`, "--cmd", "--verbose", "--liveness-path", "/live"}
	r := packer(t, env, append([]string{"build", dir, "-o", "oci:" + out, "-t", "hello:cfg"}, flags...)...)
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	// The probes, ready to paste into a container spec.
	for _, want := range []string{"packer: Kubernetes probes for the container spec:", "    readinessProbe:\n      failureThreshold: 3\n      httpGet:\n        path: /healthz\n        port: 9000", "    livenessProbe:"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("the build log lacks %q:\n%s", want, r.stderr)
		}
	}

	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	cfg, _ := img.ConfigFile()
	c := cfg.Config
	envs := strings.Join(c.Env, "\n")
	for _, want := range []string{"PORT=9000", "LOG_LEVEL=debug", "GREETING=hi there", "FROM_HOST=host-value", "FROM_TOML=toml", "EXTRA=1", "APP_VERSION=7"} {
		if !strings.Contains(envs, want+"\n") && !strings.HasSuffix(envs, want) {
			t.Errorf("ENV lacks %s:\n%s", want, envs)
		}
	}
	if c.User != "2000:2000" {
		t.Errorf("user = %q, want PACKER_USER over packer.toml", c.User)
	}
	if _, ok := c.ExposedPorts["9000/tcp"]; !ok {
		t.Errorf("exposed = %v", c.ExposedPorts)
	}
	if _, ok := c.Volumes["/data"]; !ok || len(c.Volumes) != 1 {
		t.Errorf("volumes = %v, want the flag's /data only", c.Volumes)
	}
	if c.StopSignal != "SIGINT" || c.Labels["team"] != "core" || c.Labels["org.opencontainers.image.title"] != "hello" {
		t.Errorf("stop signal %q labels %v", c.StopSignal, c.Labels)
	}
	if c.Healthcheck == nil || strings.Join(c.Healthcheck.Test, " ") != "CMD /app/hello-server -health" || c.Healthcheck.Interval != 30*time.Second {
		t.Errorf("healthcheck = %+v", c.Healthcheck)
	}
	if strings.Join(c.Cmd, " ") != "--verbose" || strings.Join(c.Entrypoint, " ") != "/app/hello-server" {
		t.Errorf("entrypoint %v cmd %v", c.Entrypoint, c.Cmd)
	}
	m, _ := img.Manifest()
	if m.Annotations["org.example.owner"] != "core" {
		t.Errorf("annotations = %v", m.Annotations)
	}
	var probes struct {
		Readiness, Liveness struct {
			HTTPGet struct {
				Path string
				Port int
			} `json:"httpGet"`
		}
	}
	raw := m.Annotations["dev.packer.probes"]
	raw = strings.NewReplacer(`"readinessProbe"`, `"Readiness"`, `"livenessProbe"`, `"Liveness"`).Replace(raw)
	if err := json.Unmarshal([]byte(raw), &probes); err != nil || probes.Readiness.HTTPGet.Path != "/healthz" || probes.Readiness.HTTPGet.Port != 9000 || probes.Liveness.HTTPGet.Path != "/live" {
		t.Errorf("probes annotation = %q", m.Annotations["dev.packer.probes"])
	}
	if _, ok := m.Annotations["dev.packer.probe"]; ok {
		t.Errorf("the old exec-probe annotation (with Docker's CMD marker) is still written")
	}

	// plan names where each value came from.
	text := mustPacker(t, env, append([]string{"plan", dir}, flags...)...)
	for _, want := range []string{
		"user:        2000:2000   (PACKER_USER)",
		"workdir:     /app   (packer.toml:2)",
		"env:         LOG_LEVEL=debug   (--env-file " + envFile + ")",
		"env:         FROM_TOML=toml   (packer.toml:9)",
		"readiness:   GET /healthz   (packer.toml:6)",
		"liveness:    GET /live   (--liveness-path)",
		"env:         PORT=9000   (--port)",
		"build arg:   APP_VERSION=7   (--build-arg)",
		"base:        builtin:static   (detected by golang)",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan output lacks %q:\n%s", want, text)
		}
	}
}

func TestInvalidConfigFile(t *testing.T) {
	dir := testutil.CopyFixture(t, "go-server")
	os.WriteFile(filepath.Join(dir, "packer.toml"), []byte("base = \"scratch\"\n\nentrypiont = [\"/x\"]\n"), 0o644)
	r := packer(t, cacheEnv(t), "build", dir)
	if r.err == nil || !strings.Contains(r.stderr, `packer.toml:3: unknown key "entrypiont"; did you mean "entrypoint"?`) {
		t.Errorf("err %v\n%s", r.err, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".packer")); err == nil {
		t.Errorf("output written despite the invalid config")
	}
	r = packer(t, cacheEnv(t), "plan", dir, "--config", filepath.Join(dir, "missing.toml"))
	if r.err == nil || !strings.Contains(r.stderr, "--config") {
		t.Errorf("missing --config: %v\n%s", r.err, r.stderr)
	}
}
