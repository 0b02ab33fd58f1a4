package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"

	"github.com/packer-build/packer/internal/testutil"
)

func canary(t *testing.T, prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// customPlan writes a plan whose one step runs script with sh in the
// staging copy and ships .packer-out as /app.
func customPlan(t *testing.T, script string) string {
	t.Helper()
	p := map[string]any{
		"provider":   "custom",
		"base":       "builtin:static",
		"steps":      []any{map[string]any{"name": "build", "run": []string{"sh", "-c", script}, "output": ".packer-out"}},
		"layers":     []any{map[string]any{"name": "app", "from": "build", "include": []string{"."}, "dest": "/app"}},
		"entrypoint": []string{"/app/none"},
		"user":       "65532:65532",
		"workingDir": "/app",
	}
	b, _ := json.Marshal(p)
	path := filepath.Join(t.TempDir(), "plan.json")
	os.WriteFile(path, b, 0o644)
	return path
}

// allBytes returns every file under dir, with gzip blobs also decompressed
// and tar streams also listed by entry name, for grepping.
func allBytes(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		out[p] = b
		if zr, err := gzip.NewReader(bytes.NewReader(b)); err == nil {
			if raw, err := io.ReadAll(zr); err == nil {
				out[p+" (gunzipped)"] = raw
				tr := tar.NewReader(bytes.NewReader(raw))
				var names []string
				for {
					h, err := tr.Next()
					if err != nil {
						break
					}
					names = append(names, h.Name, h.Linkname)
				}
				out[p+" (tar names)"] = []byte(strings.Join(names, "\n"))
			}
		}
		return nil
	})
	return out
}

func assertAbsent(t *testing.T, what string, haystack map[string][]byte, needles ...string) {
	t.Helper()
	for name, b := range haystack {
		for _, n := range needles {
			if bytes.Contains(b, []byte(n)) {
				t.Errorf("%s: canary found in %s", what, name)
			}
		}
	}
}

// TestSecretsNeverWritten: a step sees --secret values (env and file) and
// build args; afterwards no layer, config, manifest, plan, cache entry,
// stdout or stderr holds a secret, while the build arg is in ENV.
func TestSecretsNeverWritten(t *testing.T) {
	envCanary := canary(t, "envcanary-")
	fileCanary := canary(t, "filecanary-")
	npmrc := filepath.Join(t.TempDir(), "npmrc")
	os.WriteFile(npmrc, []byte("//registry.invalid/:_authToken="+fileCanary+"\n"), 0o600)

	script := `set -e; mkdir -p .packer-out
printf %s "$TOKEN" | sha256sum | cut -d' ' -f1 > .packer-out/token.sha
grep -o '_authToken=.*' "$NPM_CONFIG_USERCONFIG" | cut -d= -f2 | tr -d '\n' | sha256sum | cut -d' ' -f1 > .packer-out/npmrc.sha
printf %s "$APP_VERSION" > .packer-out/version
echo "the token is $TOKEN"`
	planFile := customPlan(t, script)
	dir := testutil.CopyFixture(t, "go-server")
	out := filepath.Join(t.TempDir(), "layout")
	cache := t.TempDir()
	env := []string{"CANARY_ENV=" + envCanary, "GOCACHE=" + goCache}
	args := []string{"build", dir, "--plan", planFile, "--cache-dir", cache, "-o", "oci:" + out, "-t", "app:v1",
		"--secret", "id=TOKEN,env=CANARY_ENV", "--secret", "id=npmrc,src=" + npmrc, "--build-arg", "APP_VERSION=4.5.6"}
	r := packer(t, env, args...)
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.stderr)
	}
	if !strings.Contains(r.stderr, "the token is ****") {
		t.Errorf("step output was not redacted as expected:\n%s", r.stderr)
	}

	// The step saw both secrets and the build arg.
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	img, _ := idx.Image(im.Manifests[0].Digest)
	files := layerFiles(t, img)
	sum := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	if strings.TrimSpace(files["app/token.sha"]) != sum(envCanary) {
		t.Errorf("the step did not see the env secret as $TOKEN")
	}
	if strings.TrimSpace(files["app/npmrc.sha"]) != sum(fileCanary) {
		t.Errorf("the step did not see the file secret through NPM_CONFIG_USERCONFIG")
	}
	if files["app/version"] != "4.5.6" {
		t.Errorf("the step saw APP_VERSION=%q, want 4.5.6", files["app/version"])
	}
	cfg, _ := img.ConfigFile()
	if !strings.Contains(strings.Join(cfg.Config.Env, "\n"), "APP_VERSION=4.5.6") {
		t.Errorf("build arg not in image ENV: %v", cfg.Config.Env)
	}

	// No canary anywhere.
	assertAbsent(t, "OCI layout (layers, config, manifests)", allBytes(t, out), envCanary, fileCanary)
	assertAbsent(t, "layer cache", allBytes(t, cache), envCanary, fileCanary)
	assertAbsent(t, "stdout/stderr", map[string][]byte{"stdout": []byte(r.stdout), "stderr": []byte(r.stderr)}, envCanary, fileCanary)
	pl := packer(t, env, "plan", "--json", dir, "--plan", planFile, "--build-arg", "APP_VERSION=4.5.6")
	if pl.err != nil {
		t.Fatalf("plan: %v\n%s", pl.err, pl.stderr)
	}
	assertAbsent(t, "plan", map[string][]byte{"plan stdout": []byte(pl.stdout), "plan stderr": []byte(pl.stderr)}, envCanary, fileCanary)
}

// TestSecretCopiedIntoImageFails: a step copies secrets into its output;
// the build fails before publishing, naming the layer and path, and the
// leaking blob is dropped from the cache.
func TestSecretCopiedIntoImageFails(t *testing.T) {
	envCanary := canary(t, "envcanary-")
	fileCanary := canary(t, "filecanary-")
	npmrc := filepath.Join(t.TempDir(), "npmrc")
	os.WriteFile(npmrc, []byte("//registry.invalid/:_authToken="+fileCanary+"\n"), 0o600)
	planFile := customPlan(t, `set -e; mkdir -p .packer-out/etc; cp "$PACKER_SECRETS/npmrc" .packer-out/etc/npmrc; printf %s "$TOKEN" > .packer-out/token`)
	dir := testutil.CopyFixture(t, "go-server")
	out := filepath.Join(t.TempDir(), "layout")
	cache := t.TempDir()
	r := packer(t, []string{"CANARY_ENV=" + envCanary}, "build", dir, "--plan", planFile, "--cache-dir", cache, "-o", "oci:"+out, "-t", "app:v1",
		"--secret", "id=TOKEN,env=CANARY_ENV", "--secret", "id=npmrc,src="+npmrc)
	if r.err == nil {
		t.Fatalf("build that copies a secret succeeded")
	}
	if !strings.Contains(r.stderr, "secret npmrc was found in the image (layer app at /app/etc/npmrc); nothing was published") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if r.stdout != "" {
		t.Errorf("stdout = %q", r.stdout)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a layout was written")
	}
	assertAbsent(t, "stderr", map[string][]byte{"stderr": []byte(r.stderr)}, envCanary, fileCanary)
	assertAbsent(t, "layer cache", allBytes(t, cache), envCanary, fileCanary)

	// Copying only the env secret is caught too.
	planFile = customPlan(t, `mkdir -p .packer-out && echo "export const key = '$TOKEN'" > .packer-out/config.js`)
	r = packer(t, []string{"CANARY_ENV=" + envCanary}, "build", dir, "--plan", planFile, "--cache-dir", cache, "-o", "oci:"+out,
		"--secret", "id=TOKEN,env=CANARY_ENV")
	if r.err == nil || !strings.Contains(r.stderr, "secret TOKEN was found in the image (layer app at /app/config.js)") {
		t.Errorf("env secret copy: err %v\n%s", r.err, r.stderr)
	}
}

func TestSecretLookingBuildArgRefused(t *testing.T) {
	dir := testutil.CopyFixture(t, "go-server")
	r := packer(t, nil, "build", dir, "--build-arg", "NPM_TOKEN=abc", "-o", "oci:"+filepath.Join(t.TempDir(), "x"))
	if r.err == nil || !strings.Contains(r.stderr, "--build-arg NPM_TOKEN looks like a secret") || !strings.Contains(r.stderr, "--secret id=NPM_TOKEN,env=NPM_TOKEN") {
		t.Errorf("err %v\n%s", r.err, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".packer")); err == nil {
		t.Errorf("output written")
	}
	r = packer(t, cacheEnv(t), "build", dir, "--build-arg", "NPM_TOKEN=abc", "--allow-secret-build-args", "-q")
	if r.err != nil {
		t.Errorf("--allow-secret-build-args: %v\n%s", r.err, r.stderr)
	}
}

func layerFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, f := range testutil.ImageFiles(t, img) {
		out[name] = string(f.Data)
	}
	return out
}
