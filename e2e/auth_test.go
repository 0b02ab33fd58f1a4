package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-build/packer/internal/testutil"
)

// TestCredentialHelper: a registry with htpasswd auth, credentials only
// from a docker credential helper named in config.json's credHelpers. The
// push works through the helper; a wrong secret fails with a clear auth
// error and tags nothing.
func TestCredentialHelper(t *testing.T) {
	htpasswd := testutil.NeedTool(t, "htpasswd", "apt-get install apache2-utils")
	dir := t.TempDir()
	out, err := exec.Command(htpasswd, "-Bbn", "ci-user", "right-secret").Output()
	if err != nil {
		t.Fatal(err)
	}
	pwFile := filepath.Join(dir, "htpasswd")
	os.WriteFile(pwFile, out, 0o644)
	host := startRegistry(t, fmt.Sprintf("auth:\n  htpasswd:\n    realm: packer-test\n    path: %s\n", pwFile))

	// Without credentials the registry refuses.
	resp, err := http.Get("http://" + host + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("registry without credentials answered %d, want 401", resp.StatusCode)
	}

	bin := filepath.Join(dir, "bin")
	os.Mkdir(bin, 0o755)
	helper := func(secret string) {
		script := fmt.Sprintf("#!/bin/sh\n[ \"$1\" = get ] || exit 1\nread server\nprintf '{\"ServerURL\":\"%%s\",\"Username\":\"ci-user\",\"Secret\":\"%s\"}' \"$server\"\n", secret)
		os.WriteFile(filepath.Join(bin, "docker-credential-packertest"), []byte(script), 0o755)
	}
	cfgDir := filepath.Join(dir, "docker")
	os.Mkdir(cfgDir, 0o755)
	cfg, _ := json.Marshal(map[string]any{"credHelpers": map[string]string{host: "packertest"}})
	os.WriteFile(filepath.Join(cfgDir, "config.json"), cfg, 0o644)
	env := append(cacheEnv(t), "DOCKER_CONFIG="+cfgDir, "PATH="+bin+":"+os.Getenv("PATH"))

	src := testutil.CopyFixture(t, "go-server")
	helper("right-secret")
	ref := host + "/team/private:v1"
	out2 := mustPacker(t, env, "build", src, "--push", "-t", ref)
	if !strings.HasPrefix(out2, host+"/team/private@sha256:") {
		t.Fatalf("stdout = %q", out2)
	}

	// Reading back goes through the same credentials: packer sbom prints
	// the attached SBOM of the private image.
	if sb := mustPacker(t, env, "sbom", ref); !strings.Contains(sb, `"spdxVersion": "SPDX-2.3"`) && !strings.Contains(sb, `"spdxVersion":"SPDX-2.3"`) {
		t.Errorf("packer sbom of the private image:\n%.300s", sb)
	}

	helper("wrong-secret")
	r := packer(t, env, "build", src, "--push", "-t", host+"/team/denied:v1")
	if r.err == nil {
		t.Fatalf("push with a wrong secret succeeded")
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "refused the credentials (HTTP 401)") || !strings.Contains(last, "packer login "+host) {
		t.Errorf("error = %q", last)
	}
	// packer login stores credentials the way docker login does (here: in
	// config.json, no credential store configured); a wrong password stores
	// nothing.
	loginCfg := filepath.Join(dir, "login")
	os.Mkdir(loginCfg, 0o755)
	loginEnv := append(cacheEnv(t), "DOCKER_CONFIG="+loginCfg)
	bad := exec.Command(packerBin, "login", host, "-u", "ci-user", "--password-stdin")
	bad.Env = append(os.Environ(), loginEnv...)
	bad.Stdin = strings.NewReader("nope\n")
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "wrong username or password") {
		t.Errorf("login with a wrong password: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(loginCfg, "config.json")); err == nil {
		t.Errorf("a failed login wrote config.json")
	}
	good := exec.Command(packerBin, "login", host, "-u", "ci-user", "--password-stdin")
	good.Env = append(os.Environ(), loginEnv...)
	good.Stdin = strings.NewReader("right-secret\n")
	if out, err := good.CombinedOutput(); err != nil {
		t.Fatalf("login: %v\n%s", err, out)
	}
	var stored struct {
		Auths map[string]struct{ Auth string } `json:"auths"`
	}
	b, _ := os.ReadFile(filepath.Join(loginCfg, "config.json"))
	json.Unmarshal(b, &stored)
	if stored.Auths[host].Auth == "" {
		t.Errorf("config.json after login: %s", b)
	}
	mustPacker(t, loginEnv, "build", src, "--push", "-t", host+"/team/after-login:v1")

	// CI credentials from the environment.
	envCreds := append(cacheEnv(t), "DOCKER_CONFIG="+t.TempDir(), "PACKER_REGISTRY="+host, "PACKER_REGISTRY_USERNAME=ci-user", "PACKER_REGISTRY_PASSWORD=right-secret")
	mustPacker(t, envCreds, "build", src, "--push", "-t", host+"/team/from-env:v1")

	// Nothing tagged: ask with the right credentials.
	req, _ := http.NewRequest("GET", "http://"+host+"/v2/team/denied/tags/list", nil)
	req.SetBasicAuth("ci-user", "right-secret")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("team/denied has tags after a refused push")
	}
}
