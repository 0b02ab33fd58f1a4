package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/packer-build/packer/internal/testutil"
)

// githubOutputs parses a $GITHUB_OUTPUT file: NAME=VALUE lines and
// NAME<<DELIM blocks.
func githubOutputs(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if k, delim, ok := strings.Cut(l, "<<"); ok {
			var v []string
			for i++; i < len(lines) && lines[i] != delim; i++ {
				v = append(v, lines[i])
			}
			out[k] = strings.Join(v, "\n")
		} else if k, v, ok := strings.Cut(l, "="); ok {
			out[k] = v
		}
	}
	return out
}

// TestGitHubAction runs the action's build script (scripts/action.sh, what
// action.yml's step runs) as a runner would, with fake GITHUB_OUTPUT and
// GITHUB_STEP_SUMMARY files: the outputs digest, imageid and metadata match
// what the registry holds, and the summary names the image. A bad input
// fails with a GitHub error annotation.
func TestGitHubAction(t *testing.T) {
	t.Parallel()
	testutil.NeedTool(t, "jq", "apt-get install jq")
	reg := startRegistry(t, "")
	dir := testutil.CopyFixture(t, "go-server")
	tmp := t.TempDir()
	output, summary := filepath.Join(tmp, "output"), filepath.Join(tmp, "summary.md")
	run := func(inputs ...string) (string, error) {
		cmd := exec.Command("bash", filepath.Join(testutil.Root(t), "scripts", "action.sh"))
		cmd.Env = append(os.Environ(), cacheEnv(t)...)
		cmd.Env = append(cmd.Env, "PATH="+filepath.Dir(packerBin)+":"+os.Getenv("PATH"), "GITHUB_OUTPUT="+output, "GITHUB_STEP_SUMMARY="+summary, "RUNNER_TEMP="+tmp)
		cmd.Env = append(cmd.Env, inputs...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("INPUT_CONTEXT="+dir, "INPUT_TAGS="+reg+"/hello:v1, "+reg+"/hello:latest", "INPUT_PUSH=true",
		"INPUT_BUILD_ARGS=GREETING=hi\nMODE=ci", "INPUT_SIGN=none", "INPUT_SBOM=spdx"); err != nil {
		t.Fatalf("action.sh: %v\n%s", err, out)
	}
	o := githubOutputs(t, output)
	img, err := remote.Image(mustRef(t, reg+"/hello:v1"))
	if err != nil {
		t.Fatal(err)
	}
	digest, _ := img.Digest()
	cfg, _ := img.ConfigName()
	if o["digest"] != digest.String() {
		t.Errorf("output digest %q, the registry's %s", o["digest"], digest)
	}
	if o["imageid"] != cfg.String() {
		t.Errorf("output imageid %q, the config digest %s", o["imageid"], cfg)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(o["metadata"]), &m); err != nil || m["containerimage.digest"] != digest.String() || m["image.name"] != reg+"/hello:v1,"+reg+"/hello:latest" {
		t.Errorf("output metadata %v (%v)", m, err)
	}
	if latest, err := remote.Head(mustRef(t, reg+"/hello:latest")); err != nil || latest.Digest != digest {
		t.Errorf("the second tag: %v, %v", latest, err)
	}
	c, _ := img.ConfigFile()
	if !strings.Contains(strings.Join(c.Config.Env, " "), "MODE=ci") {
		t.Errorf("build args did not become ENV: %v", c.Config.Env)
	}
	s, _ := os.ReadFile(summary)
	for _, want := range []string{"### packer build", "| digest | `" + digest.String() + "` |", "linux/amd64", "new", "SBOM:"} {
		if !strings.Contains(string(s), want) {
			t.Errorf("job summary lacks %q:\n%s", want, s)
		}
	}
	out, err := run("INPUT_CONTEXT="+dir, "INPUT_SIGN=maybe")
	if err == nil || !strings.Contains(out, "::error::sign must be none, keyless or key") {
		t.Errorf("a bad sign input: %v\n%s", err, out)
	}
}
