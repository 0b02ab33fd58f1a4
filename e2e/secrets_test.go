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

// writePlan writes a plan (as packer plan --json prints one) to a file
// for --plan and returns its path.
func writePlan(t *testing.T, p map[string]any) string {
	t.Helper()
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
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
	return writePlan(t, p)
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

// sourcePlan writes a plan that ships the context itself as /app (a source
// layer) and, through a step, what the staging copy holds under templates
// as /app/staged: both ways a context file reaches an image.
func sourcePlan(t *testing.T) string {
	t.Helper()
	p := map[string]any{
		"provider": "custom",
		"base":     "builtin:static",
		"steps":    []any{map[string]any{"name": "build", "run": []string{"sh", "-c", "mkdir -p .packer-out && cp -a templates .packer-out/staged"}, "output": ".packer-out"}},
		"layers": []any{
			map[string]any{"name": "staged", "from": "build", "include": []string{"."}, "dest": "/app"},
			map[string]any{"name": "app", "from": "src", "include": []string{"."}, "dest": "/app"},
		},
		"entrypoint": []string{"/app/none"},
		"user":       "65532:65532",
		"workingDir": "/app",
	}
	return writePlan(t, p)
}

// TestSecretFilesInSubdirectoriesLeftOut: secret-bearing files below the
// context root never reach an image, through the app layer or a step's
// output; the log names each one; a `!` line brings one back.
func TestSecretFilesInSubdirectoriesLeftOut(t *testing.T) {
	key := "-----BEGIN OPENSSH PRIVATE KEY-----\n" + canary(t, "keycanary-") + "\n-----END OPENSSH PRIVATE KEY-----\n"
	secretFiles := map[string]string{
		".env": "DB_PASSWORD=" + canary(t, "env-"), ".env.local": "X=" + canary(t, "envlocal-"),
		".env.example": "DB_PASSWORD=", ".git/HEAD": "ref: refs/heads/main",
		"id_rsa": key, "id_ed25519": key, ".ssh/id_rsa": key,
		"server.pem":          "-----BEGIN RSA PRIVATE KEY-----\n" + canary(t, "pem-") + "\n-----END RSA PRIVATE KEY-----\n",
		"tls.key":             "-----BEGIN EC PRIVATE KEY-----\n" + canary(t, "tlskey-") + "\n-----END EC PRIVATE KEY-----\n",
		".npmrc":              "//registry.invalid/:_authToken=" + canary(t, "npm-") + "\n",
		".aws/credentials":    "[default]\naws_secret_access_key=" + canary(t, "aws-") + "\n",
		".netrc":              "machine example.invalid login u password " + canary(t, "netrc-") + "\n",
		".dockercfg":          `{"r":{"auth":"` + canary(t, "dockercfg-") + `"}}`,
		".docker/config.json": `{"auths":{"r":{"auth":"` + canary(t, "docker-") + `"}}}`,
		".pypirc":             "[pypi]\nusername = __token__\npassword = " + canary(t, "pypi-") + "\n",
	}
	dir := testutil.CopyFixture(t, "go-server")
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "index.html"), []byte("<p>hello</p>"), 0o644)
	for name, content := range secretFiles {
		p := filepath.Join(dir, "templates", filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o600)
	}
	planFile := sourcePlan(t)
	build := func(t *testing.T) (map[string]string, string) {
		t.Helper()
		out := filepath.Join(t.TempDir(), "layout")
		r := packer(t, cacheEnv(t), "build", dir, "--plan", planFile, "-o", "oci:"+out, "-t", "app:v1")
		if r.err != nil {
			t.Fatalf("build: %v\n%s", r.err, r.stderr)
		}
		idx, err := layout.ImageIndexFromPath(out)
		if err != nil {
			t.Fatal(err)
		}
		im, _ := idx.IndexManifest()
		img, _ := idx.Image(im.Manifests[0].Digest)
		return layerFiles(t, img), r.stderr
	}

	files, stderr := build(t)
	if files["app/templates/index.html"] == "" || files["app/staged/index.html"] == "" {
		t.Fatalf("the image lacks templates/index.html (app %v, staged %v)", files["app/templates/index.html"] != "", files["app/staged/index.html"] != "")
	}
	for name := range secretFiles {
		for _, where := range []string{"app/templates/", "app/staged/"} {
			if _, ok := files[where+name]; ok {
				t.Errorf("the image holds /%s%s", where, name)
			}
		}
		logged := "templates/" + name
		if name == ".git/HEAD" {
			logged = "templates/.git"
		}
		if !strings.Contains(stderr, "left out "+logged+":") {
			t.Errorf("the log does not name %s", logged)
		}
	}
	for _, c := range secretFiles {
		for f, data := range files {
			if len(c) > 20 && strings.Contains(data, c) {
				t.Errorf("/%s holds a secret file's contents", f)
			}
		}
	}

	os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("!templates/.env.example\n"), 0o644)
	files, stderr = build(t)
	if _, ok := files["app/templates/.env.example"]; !ok {
		t.Errorf("!templates/.env.example did not bring it back")
	}
	if _, ok := files["app/templates/.env"]; ok {
		t.Errorf("!templates/.env.example brought back .env too")
	}
	if !strings.Contains(stderr, "warning: shipping templates/.env.example") {
		t.Errorf("no warning for the re-included file:\n%s", stderr)
	}
}

// TestLargeSecretFile: a 1 MiB secret (a CA bundle for a corporate proxy)
// builds, and a copy of it inside the context is still caught.
func TestLargeSecretFile(t *testing.T) {
	var bundle bytes.Buffer
	for bundle.Len() < 1<<20 {
		bundle.WriteString("-----BEGIN CERTIFICATE-----\n" + canary(t, "MIIC") + "\n-----END CERTIFICATE-----\n")
	}
	ca := filepath.Join(t.TempDir(), "ca-bundle.pem")
	os.WriteFile(ca, bundle.Bytes(), 0o600)
	dir := testutil.CopyFixture(t, "go-server")
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "index.html"), []byte("<p>hello</p>"), 0o644)
	planFile := sourcePlan(t)
	out := filepath.Join(t.TempDir(), "layout")
	r := packer(t, cacheEnv(t), "build", dir, "--plan", planFile, "-o", "oci:"+out, "--secret", "id=ca,src="+ca)
	if r.err != nil {
		t.Fatalf("build with a 1 MiB secret: %v\n%s", r.err, r.stderr)
	}
	os.WriteFile(filepath.Join(dir, "templates", "ca-bundle.crt"), bundle.Bytes(), 0o644)
	out2 := filepath.Join(t.TempDir(), "layout")
	r = packer(t, cacheEnv(t), "build", dir, "--plan", planFile, "-o", "oci:"+out2, "--secret", "id=ca,src="+ca)
	if r.err == nil || !strings.Contains(r.stderr, "secret ca was found in the image") || !strings.Contains(r.stderr, "ca-bundle.crt); nothing was published") {
		t.Errorf("a copy of the 1 MiB secret in the context: %v\n%s", r.err, r.stderr)
	}
	if _, err := os.Stat(out2); err == nil {
		t.Errorf("a layout was written although the secret leaked")
	}
}
