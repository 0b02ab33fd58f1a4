package scaleout

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-build/packer/internal/testutil"
	"github.com/packer-build/packer/plan"
)

func fixturePlan(t *testing.T, name string) *plan.Plan {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testutil.Root(t), "testdata", "fixtures", name+".plan.json"))
	if err != nil {
		t.Fatal(err)
	}
	var p plan.Plan
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func contextOf(t *testing.T, name string) []string {
	t.Helper()
	root := filepath.Join(testutil.Root(t), "testdata", "fixtures", name)
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// TestDockerfileGolden pins the Dockerfile of a Go server, an npm app
// with a build step, a pnpm workspace, a uv project (a generated
// requirements file) and a Django app (a step that needs another), with a
// secret: go test ./scaleout -update rewrites them.
func TestDockerfileGolden(t *testing.T) {
	for _, name := range []string{"go-server", "node-nest", "node-pnpm-workspace-root", "py-fastapi-uv", "py-django-procfile", "static-site"} {
		t.Run(name, func(t *testing.T) {
			df, err := Dockerfile(fixturePlan(t, name), Options{Context: contextOf(t, name), Secrets: []Secret{{ID: "npmrc"}, {ID: "API_TOKEN", Env: true}}})
			if err != nil {
				t.Fatal(err)
			}
			testutil.Golden(t, filepath.Join("testdata", name+".Dockerfile"), df)
		})
	}
}

// TestShellWords runs what the Dockerfile's shell sees: quoted arguments
// with placeholders, and printf words, come out as the plan has them.
func TestShellWords(t *testing.T) {
	sh := testutil.NeedTool(t, "sh", "a POSIX shell")
	content := "line 1 with 'quotes', \"double\", $HOME, 100% and a \\ backslash\n\ttabbed\n"
	out, err := exec.Command(sh, "-c", "printf "+printfWord(content)).Output()
	if err != nil || string(out) != content {
		t.Errorf("printf %s = %q, %v; want %q", printfWord(content), out, err, content)
	}
	arg := "--cpu=" + plan.NodeArch + " it's"
	out, err = exec.Command(sh, "-c", "NODEARCH=x64; printf '%s' "+shArg(arg)).Output()
	if err != nil || string(out) != "--cpu=x64 it's" {
		t.Errorf("shArg(%q) gave %q, %v", arg, out, err)
	}
}

// TestStepScriptRuns runs a step's script with sh: the platform
// variables, the step's env, its generated files and the env secret are
// what packer build gives a step.
func TestStepScriptRuns(t *testing.T) {
	sh := testutil.NeedTool(t, "sh", "a POSIX shell")
	dir := t.TempDir()
	secrets := filepath.Join(dir, "secrets")
	os.MkdirAll(secrets, 0o755)
	os.WriteFile(filepath.Join(secrets, "API_TOKEN"), []byte("s3cr3t"), 0o600)
	s := plan.Step{
		Name: "x", Run: []string{"sh", "-c", `printf '%s|%s|%s|%s|%s' "$GOARCH" "$NODE_ENV" "$(cat gen/req.txt)" "$API_TOKEN" "${TARGETMACHINE}" > out`},
		Env:   map[string]string{"GOARCH": plan.TargetArch, "NODE_ENV": "production"},
		Files: map[string]string{"gen/req.txt": "flask==3.1.0"},
	}
	script := strings.ReplaceAll(StepScript(s, []Secret{{ID: "API_TOKEN", Env: true}}), SecretsDir, secrets)
	cmd := exec.Command(sh, "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TARGETARCH=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s\nscript:\n%s", err, out, script)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "out"))
	m, _ := exec.Command("uname", "-m").Output()
	arch := map[string]string{"x86_64": "amd64", "aarch64": "arm64"}[strings.TrimSpace(string(m))]
	if want := arch + "|production|flask==3.1.0|s3cr3t|" + strings.TrimSpace(string(m)); string(got) != want {
		t.Errorf("step saw %q, want %q", got, want)
	}
	// A cross build: the engine's TARGETARCH is the target's, whatever
	// machine runs the step.
	cmd = exec.Command(sh, "-c", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "TARGETARCH=arm64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	got, _ = os.ReadFile(filepath.Join(dir, "out"))
	if want := "arm64|production|flask==3.1.0|s3cr3t|aarch64"; string(got) != want {
		t.Errorf("cross step saw %q, want %q", got, want)
	}
}

// TestDockerfileRefusals: a plan whose steps have nowhere to run, and a
// source layer whose includes are not in the context, fail clearly.
func TestDockerfileRefusals(t *testing.T) {
	p := fixturePlan(t, "go-server")
	p.BuildImage = ""
	if _, err := Dockerfile(p, Options{Context: contextOf(t, "go-server")}); err == nil || !strings.Contains(err.Error(), "buildImage") {
		t.Errorf("no build image: %v", err)
	}
	p = fixturePlan(t, "go-server")
	if _, err := Dockerfile(p, Options{Context: []string{"main.go", "go.mod"}}); err == nil || !strings.Contains(err.Error(), "templates") {
		t.Errorf("missing include: %v", err)
	}
}
