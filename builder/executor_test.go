package builder_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/plan"
)

// fakeExecutor runs steps as Go functions instead of commands, so these
// tests need no go, npm or python, and no shell either.
type fakeExecutor struct {
	mu     sync.Mutex
	steps  map[string]func(r builder.StepRun) error
	probe  string
	ran    []string
	probes int
}

var _ builder.Executor = (*fakeExecutor)(nil)

func (f *fakeExecutor) Probe(_ context.Context, p builder.Probe) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.probes++
	return f.probe, nil
}

func (f *fakeExecutor) Run(_ context.Context, r builder.StepRun) error {
	f.mu.Lock()
	f.ran = append(f.ran, r.Step.Name)
	f.mu.Unlock()
	return f.steps[r.Step.Name](r)
}

func (f *fakeExecutor) takeRan() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.ran
	f.ran = nil
	return r
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A Node-shaped plan: production deps (a layer), dev deps (cache-only:
// never shipped, put back for the build), a build that needs the dev
// deps, and the sources.
func stepPlan() *plan.Plan {
	return &plan.Plan{
		Provider: "test", Base: plan.BaseStatic, User: "65532:65532", WorkingDir: "/app",
		Entrypoint: []string{"/app/dist/app"},
		Steps: []plan.Step{
			{Name: "deps", Run: []string{"install", "--production"}, Inputs: []string{"lock"}, Toolchain: []string{"tool", "--version"}, Output: ".out/deps"},
			{Name: "devdeps", Run: []string{"install", "--dev"}, Inputs: []string{"lock"}, Output: ".out/dev"},
			{Name: "build", Run: []string{"compile", "${TARGETARCH}"}, Needs: []string{"devdeps"}, Env: map[string]string{"ARCH": "${TARGETARCH}"}, Output: "dist"},
		},
		Layers: []plan.Layer{
			{Name: "deps", From: "deps", Dest: "/app/node_modules"},
			{Name: "dev", From: "devdeps", Dest: "/app/node_modules", CacheOnly: true},
			{Name: "build", From: "build", Dest: "/app/dist"},
			{Name: "app", From: plan.FromSource, Include: []string{"src", "lock"}, Dest: "/app"},
		},
	}
}

func TestExecutorSteps(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // nothing to run: every step is the fake's
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "lock"), "dep@1\n")
	writeFile(t, filepath.Join(dir, "src/index.js"), "v1")

	var seenEnv, seenArgv []string
	fake := &fakeExecutor{probe: "tool 1.0\n", steps: map[string]func(builder.StepRun) error{
		"deps": func(r builder.StepRun) error {
			return os.WriteFile(filepath.Join(mkdir(r.Dir, ".out/deps/dep"), "index.js"), []byte("prod"), 0o644)
		},
		"devdeps": func(r builder.StepRun) error {
			return os.WriteFile(filepath.Join(mkdir(r.Dir, ".out/dev/compiler"), "index.js"), []byte("dev"), 0o644)
		},
		"build": func(r builder.StepRun) error {
			seenEnv, seenArgv = r.Env, r.Argv
			// Needs: the dev deps are in the staging copy, run or restored;
			// the production deps (not needed) are not put back.
			if _, err := os.Stat(filepath.Join(r.Dir, ".out/dev/compiler/index.js")); err != nil {
				return fmt.Errorf("the dev deps this step needs are missing: %w", err)
			}
			src, err := os.ReadFile(filepath.Join(r.Dir, "src/index.js"))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(mkdir(r.Dir, "dist"), "app"), append([]byte("built:"), src...), 0o755)
		},
	}}
	store, err := layers.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	build1 := func(p *plan.Plan) (v1.Image, *builder.Report, string) {
		t.Helper()
		var log bytes.Buffer
		res, rep, err := builder.Build(t.Context(), dir, p, builder.Options{
			Platforms: []v1.Platform{amd64}, Store: store, Version: "test", Log: &log, Executor: fake,
			SecretEnv: map[string]string{"TOKEN": "s3cr3t-value"},
		})
		if err != nil {
			t.Fatalf("Build() = %v\n%s", err, log.String())
		}
		img := res.Result.(v1.Image)
		if err := validate.Image(img); err != nil {
			t.Fatalf("validate.Image() = %v", err)
		}
		return img, rep, log.String()
	}

	img, rep, _ := build1(stepPlan())
	if got := fake.takeRan(); !slices.Equal(got, []string{"deps", "devdeps", "build"}) {
		t.Errorf("first build ran %v, want all three steps", got)
	}
	if fake.probes != 1 {
		t.Errorf("toolchain probed %d times, want once", fake.probes)
	}
	if !slices.Equal(seenArgv, []string{"compile", "amd64"}) || !slices.Contains(seenEnv, "ARCH=amd64") {
		t.Errorf("build step got argv %v, env %v; want the platform expanded", seenArgv, seenEnv)
	}
	files := imageFiles(t, img)
	for _, f := range []string{"app/node_modules/dep/index.js", "app/dist/app", "app/src/index.js", "app/lock"} {
		if _, ok := files[f]; !ok {
			t.Errorf("image lacks /%s", f)
		}
	}
	if _, ok := files["app/node_modules/compiler/index.js"]; ok {
		t.Errorf("the cache-only dev deps were shipped")
	}
	names := []string{}
	for _, l := range rep.Layers[amd64.String()] {
		names = append(names, l.Name)
	}
	if !slices.Equal(names, []string{"deps", "build", "app"}) {
		t.Errorf("layers = %v, want deps, build, app (no cache-only layer)", names)
	}
	d1, _ := img.Digest()

	// Nothing changed: no step runs, same digest.
	img, rep, log := build1(stepPlan())
	if got := fake.takeRan(); len(got) != 0 || rep.StepsCached != 3 {
		t.Errorf("unchanged rebuild ran %v (%d cached), want none", got, rep.StepsCached)
	}
	if d2, _ := img.Digest(); d2 != d1 {
		t.Errorf("unchanged rebuild digest %s, want %s", d2, d1)
	}
	if strings.Contains(log, "s3cr3t-value") {
		t.Errorf("a secret reached the log")
	}

	// A source change: the build runs again with the dev deps restored
	// from the cache-only layer; the installs do not.
	writeFile(t, filepath.Join(dir, "src/index.js"), "v2")
	img, _, log = build1(stepPlan())
	if got := fake.takeRan(); !slices.Equal(got, []string{"build"}) {
		t.Errorf("source change ran %v, want only build", got)
	}
	if !strings.Contains(log, "step devdeps: put its cached output back") {
		t.Errorf("log does not say the dev deps were put back:\n%s", log)
	}
	if got := string(imageFiles(t, img)["app/dist/app"]); got != "built:v2" {
		t.Errorf("/app/dist/app = %q, want built:v2", got)
	}

	// A new toolchain version is a new cache key for the step probing it.
	fake.probe = "tool 2.0\n"
	build1(stepPlan())
	if got := fake.takeRan(); !slices.Equal(got, []string{"deps"}) {
		t.Errorf("toolchain change ran %v, want deps", got)
	}

	// A lockfile change reruns both installs and the build that needs one.
	writeFile(t, filepath.Join(dir, "lock"), "dep@2\n")
	build1(stepPlan())
	if got := fake.takeRan(); !slices.Equal(got, []string{"deps", "devdeps", "build"}) {
		t.Errorf("lockfile change ran %v, want all three", got)
	}
}

func TestExecutorStepFailure(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "lock"), "x")
	boom := errors.New("exit status 3")
	fake := &fakeExecutor{steps: map[string]func(builder.StepRun) error{
		"deps": func(r builder.StepRun) error {
			fmt.Fprintln(r.Output, "npm ERR! code E404 for left-pad")
			return boom
		},
	}}
	p := stepPlan()
	p.Steps = p.Steps[:1]
	p.Steps[0].Toolchain = nil
	p.Steps[0].Errors = []plan.ErrorHint{{Pattern: `code E404 for (\S+)`, Message: "package ${1} is not in the registry; check its name"}}
	p.Layers = p.Layers[:1]
	store, _ := layers.NewStore(t.TempDir())
	_, _, err := builder.Build(t.Context(), dir, p, builder.Options{Platforms: []v1.Platform{amd64}, Store: store, Executor: fake})
	if err == nil || !strings.Contains(err.Error(), "package left-pad is not in the registry") {
		t.Errorf("Build() = %v, want the step's error hint", err)
	}
	p.Steps[0].Errors = nil
	_, _, err = builder.Build(t.Context(), dir, p, builder.Options{Platforms: []v1.Platform{amd64}, Store: store, Executor: fake})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "step deps failed") {
		t.Errorf("Build() = %v, want the step failure wrapped", err)
	}
}

func mkdir(parts ...string) string {
	d := filepath.Join(parts...)
	os.MkdirAll(d, 0o755)
	return d
}

func imageFiles(t *testing.T, img v1.Image) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		err = layers.Entries(rc, func(name string, h *tar.Header, body io.Reader) error {
			b, err := io.ReadAll(body)
			out[name] = b
			return err
		})
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// A plan's toolchain check warns when the probe shows another runtime
// than the image's (no language knowledge in the builder itself).
func TestToolchainCheck(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "lock"), "x")
	fake := &fakeExecutor{probe: "v18.19.0\n11.0.0\n", steps: map[string]func(builder.StepRun) error{
		"deps": func(r builder.StepRun) error { return os.MkdirAll(filepath.Join(r.Dir, ".out/deps"), 0o755) },
	}}
	p := stepPlan()
	p.Steps, p.Layers = p.Steps[:1], p.Layers[:1]
	p.ToolchainChecks = []plan.ToolchainCheck{{Pattern: `^v(\d+)\.`, Want: "20", Message: "host ${have}, image ${want}"}}
	store, _ := layers.NewStore(t.TempDir())
	var log bytes.Buffer
	if _, _, err := builder.Build(t.Context(), dir, p, builder.Options{Platforms: []v1.Platform{amd64}, Store: store, Executor: fake, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "warning: host 18, image 20") {
		t.Errorf("no toolchain warning in the log:\n%s", log.String())
	}
	fake.probe = "v20.1.0\n"
	log.Reset()
	if _, _, err := builder.Build(t.Context(), dir, p, builder.Options{Platforms: []v1.Platform{amd64}, Store: store, Executor: fake, Log: &log}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "warning") {
		t.Errorf("a matching toolchain warned:\n%s", log.String())
	}
}

// A failed step's error ends with the line of its output that says why;
// a step killed from outside gets no hint about its inputs.
func TestStepFailureNamesTheCause(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "lock"), "x")
	p := stepPlan()
	p.Steps, p.Layers = p.Steps[:1], p.Layers[:1]
	p.Steps[0].Toolchain = nil
	p.Steps[0].Hint = "if npm says the lockfile is out of sync, run npm install"
	store, _ := layers.NewStore(t.TempDir())
	build := func(run []string) error {
		p.Steps[0].Run = run
		_, _, err := builder.Build(t.Context(), dir, p, builder.Options{Platforms: []v1.Platform{amd64}, Store: store, Executor: builder.Host{}, NoCache: true})
		return err
	}
	err := build([]string{"sh", "-c", "echo 'npm error code E404'; echo 'npm error 404 Not Found - GET left-padd'; echo 'npm error A complete log of this run can be found in: x'; exit 1"})
	lines := strings.Split(fmt.Sprint(err), "\n")
	if err == nil || lines[len(lines)-1] != "cause: npm: 404 Not Found - GET left-padd" {
		t.Errorf("Build() = %v; want the last line to name npm's cause", err)
	}
	err = build([]string{"sh", "-c", "kill -9 $$"})
	if err == nil || !strings.Contains(err.Error(), "was killed by signal killed") || strings.Contains(err.Error(), "lockfile") {
		t.Errorf("Build(killed step) = %v; want the signal named and no lockfile hint", err)
	}
}

// A silent step gets a heartbeat line in the log.
func TestHeartbeat(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "lock"), "x")
	p := stepPlan()
	p.Steps, p.Layers = p.Steps[:1], p.Layers[:1]
	p.Steps[0].Toolchain = nil
	fake := &fakeExecutor{steps: map[string]func(builder.StepRun) error{
		"deps": func(r builder.StepRun) error {
			time.Sleep(600 * time.Millisecond)
			return os.MkdirAll(filepath.Join(r.Dir, ".out/deps"), 0o755)
		},
	}}
	store, _ := layers.NewStore(t.TempDir())
	var log syncBuffer
	if _, _, err := builder.Build(t.Context(), dir, p, builder.Options{Platforms: []v1.Platform{amd64}, Store: store, Executor: fake, Log: &log, Heartbeat: 150 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "step deps (linux/amd64): still running") {
		t.Errorf("no heartbeat for a silent step:\n%s", log.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// The plan's runtime is checked against the base's: another Node.js major
// is built for (and the ABI check aims at it) unless the app asked for one
// the base cannot give; another Python is an error (packages were
// installed for the plan's).
func TestBaseRuntimes(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "lock"), "x")
	baseWith := func(env ...string) builder.BaseResolver {
		return func(context.Context, string, v1.Platform) (v1.Image, *builder.BaseInfo, error) {
			img, err := mutate.ConfigFile(empty.Image, &v1.ConfigFile{OS: "linux", Architecture: "amd64", Config: v1.Config{Env: env}})
			return img, nil, err
		}
	}
	run := func(p *plan.Plan, resolve builder.BaseResolver, probe string) (string, error) {
		fake := &fakeExecutor{probe: probe, steps: map[string]func(builder.StepRun) error{
			"deps": func(r builder.StepRun) error { return os.MkdirAll(filepath.Join(r.Dir, ".out/deps"), 0o755) },
		}}
		store, _ := layers.NewStore(t.TempDir())
		var log bytes.Buffer
		_, _, err := builder.Build(t.Context(), dir, p, builder.Options{Platforms: []v1.Platform{amd64}, Store: store, Executor: fake, Log: &log, Resolve: resolve})
		return log.String(), err
	}
	nodePlan := func(rng string) *plan.Plan {
		p := stepPlan()
		p.Base = "example.invalid/node"
		p.Steps, p.Layers = p.Steps[:1], p.Layers[:1]
		p.BaseRuntimes = []plan.BaseRuntime{{Name: "Node.js", Want: "22", Env: "NODE_VERSION", Dpkg: "nodejs", Range: rng}}
		p.ToolchainChecks = []plan.ToolchainCheck{{Pattern: `^v(\d+)\.`, Want: "22", Message: "host ${have}, image ${want}"}}
		return p
	}
	log, err := run(nodePlan(""), baseWith("NODE_VERSION=20.11.1"), "v20.20.2\n")
	if err != nil || !strings.Contains(log, "the base image has Node.js 20.11.1 (its NODE_VERSION), not the Node.js 22 the plan assumed") || strings.Contains(log, "warning") {
		t.Errorf("Node 20 base, default 22: %v\n%s", err, log)
	}
	if _, err := run(nodePlan(">=22"), baseWith("NODE_VERSION=20.11.1"), "v20.20.2\n"); err == nil || !strings.Contains(err.Error(), "has Node.js 20.11.1 (its NODE_VERSION), but the build needs Node.js 22") {
		t.Errorf("Node 20 base, engines >=22: %v", err)
	}
	py := stepPlan()
	py.Base = "example.invalid/python"
	py.Steps, py.Layers = py.Steps[:1], py.Layers[:1]
	py.Steps[0].Toolchain = nil
	py.BaseRuntimes = []plan.BaseRuntime{{Name: "Python", Want: "3.13", Env: "PYTHON_VERSION", Dpkg: "python3", Strict: true, Asked: ".python-version says 3.13"}}
	if _, err := run(py, baseWith("PYTHON_VERSION=3.11.2"), ""); err == nil || !strings.Contains(err.Error(), "has Python 3.11.2 (its PYTHON_VERSION), but the build needs Python 3.13 (.python-version says 3.13): choose a base with Python 3.13, or ask for Python 3.11") {
		t.Errorf("Python 3.11 base for a 3.13 plan: %v", err)
	}
	if _, err := run(py, baseWith("PYTHON_VERSION=3.13.1"), ""); err != nil {
		t.Errorf("Python 3.13 base: %v", err)
	}
}

// TestHostStepStopsAtOnce: a cancelled step stops with its children (a
// shell's sleep kept the output open and the build waiting), and a step
// that succeeds leaving a process behind holding its output still
// succeeds.
func TestHostStepStopsAtOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan error)
	go func() {
		done <- builder.Host{}.Run(ctx, builder.StepRun{Argv: []string{"sh", "-c", "sleep 30; echo late"}, Dir: t.TempDir(), Output: &out})
	}()
	time.Sleep(200 * time.Millisecond)
	start := time.Now()
	cancel()
	if err := <-done; err == nil || time.Since(start) > 2*time.Second {
		t.Errorf("cancelled step: %v after %s; want an error within 2s", err, time.Since(start))
	}
	start = time.Now()
	err := builder.Host{}.Run(context.Background(), builder.StepRun{Argv: []string{"sh", "-c", "(sleep 5 &) ; echo ok"}, Dir: t.TempDir(), Output: &out})
	if err != nil || time.Since(start) > 3*time.Second {
		t.Errorf("a step leaving a background process: %v after %s; want success without waiting for it", err, time.Since(start))
	}
}
