package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-build/packer/internal/testutil"
)

// badCase is one bad input: packer build DIR ARGS..., with FILES written
// into (or, "" content, removed from) a copy of the go-server fixture.
type badCase struct {
	name  string
	args  []string
	files map[string]string
	want  string
}

// badInputs is the corpus: flags, packer.toml, PACKER_* values, context
// files and plans that packer must refuse with an error naming the cause.
func badInputs() []badCase {
	var cs []badCase
	flag := func(name, want string, args ...string) { cs = append(cs, badCase{name: name, args: args, want: want}) }
	file := func(name, want string, files map[string]string, args ...string) {
		cs = append(cs, badCase{name: name, args: args, files: files, want: want})
	}
	toml := func(name, body, want string) {
		file("packer.toml: "+name, want, map[string]string{"packer.toml": body})
	}

	// Platforms.
	flag("platform no arch", "want OS/ARCH[/VARIANT]", "--platform", "linux")
	flag("platform unknown arch", `unknown architecture "amd65"`, "--platform", "linux/amd65")
	flag("platform windows", "packer builds linux images", "--platform", "windows/amd64")
	flag("platform twice", "lists linux/amd64 twice", "--platform", "linux/amd64,linux/amd64")
	flag("platform empty part", "want OS/ARCH", "--platform", "linux/amd64,,x")
	// Ports.
	for _, p := range []string{"0", "65536", "-1", "http", "80/udp", "8080x"} {
		flag("port "+p, "want a number 1-65535", "--port", p)
	}
	// User, workdir, stop signal, executor.
	for _, u := range []string{"a b", "1000:", ":1000", "-1", "user:gr oup", "ROOT!"} {
		flag("user "+u, "is not UID[:GID]", "--user", u)
	}
	flag("user name not in scratch", `user "app" is not in the base image's /etc/passwd`, "--user", "app", "--base", "scratch")
	flag("workdir relative", "is not an absolute path", "--workdir", "app")
	flag("workdir dot", "is not an absolute path", "--workdir", ".")
	for _, s := range []string{"SIGNOPE", "0", "65", "TERMINATE", "SIG"} {
		want := "is not a signal"
		if s == "0" || s == "65" {
			want = "is out of range 1-64"
		}
		flag("stop signal "+s, want, "--stop-signal", s)
	}
	flag("executor unknown", "use auto, host or image", "--executor", "docker")
	flag("executor empty word", "use auto, host or image", "--executor", "chroot")
	// System packages.
	for _, p := range []string{"libpq5;rm", "Libpq", "-x", "a b", "pkg=", "$(id)"} {
		flag("system package "+p, "is not a package name", "--system-run", p)
	}
	flag("system build package", "is not a package name", "--system-build", "gcc&&x")
	// Entrypoint, cmd, health check.
	flag("entrypoint bad JSON", "write a JSON array of strings", "--entrypoint", `["a", 1]`)
	flag("entrypoint unterminated JSON", "write a JSON array of strings", "--entrypoint", `["a"`)
	flag("cmd bad JSON", "write a JSON array of strings", "--cmd", `[1]`)
	flag("entrypoint unterminated quote", "unterminated quote", "--entrypoint", `"/app/x`)
	flag("healthcheck empty", "empty command", "--healthcheck", " ")
	flag("healthcheck bad JSON", "write a JSON array of strings", "--healthcheck", `["CMD"`)
	// Key=value flags.
	flag("label without =", "want KEY=VALUE", "--label", "team")
	flag("label empty key", "want KEY=VALUE", "--label", "=x")
	flag("annotation without =", "want KEY=VALUE", "--annotation", "owner")
	flag("build arg empty key", "is not a variable name", "--build-arg", "=x")
	flag("build arg secret name", "--build-arg NPM_TOKEN looks like a secret", "--build-arg", "NPM_TOKEN=abc123")
	flag("build arg password", "--build-arg DB_PASSWORD looks like a secret", "--build-arg", "DB_PASSWORD=hunter2")
	flag("env empty key", "is not a variable name", "--env", "=x")
	flag("env file missing", "--env-file: open /nonexistent/.env", "--env-file", "/nonexistent/.env")
	// Secrets.
	flag("secret no id", "needs id=NAME", "--secret", "src=/etc/hostname")
	flag("secret missing file", "--secret npm: reading /nonexistent/npmrc", "--secret", "id=npm,src=/nonexistent/npmrc")
	flag("secret unset env", "PACKER_TEST_UNSET_VARIABLE is not set", "--secret", "id=tok,env=PACKER_TEST_UNSET_VARIABLE")
	flag("secret bad key", "unknown key \"colour\"", "--secret", "id=x,colour=blue")
	flag("secret empty", `invalid --secret ""`, "--secret", "")
	// Outputs, tags, pushing.
	flag("output zip", `invalid --output "zip:out"`, "-o", "zip:out")
	flag("output empty layout", `invalid --output "oci:"`, "-o", "oci:")
	flag("output tar without tag", "needs a name for docker load", "-o", "tar:"+filepath.Join(os.TempDir(), "packer-corpus-never.tar"))
	flag("tag uppercase", `invalid tag "Hello:v1"`, "-t", "Hello:v1")
	flag("tag spaces", "invalid tag", "-t", "hello world")
	flag("tag bad chars", "invalid tag", "-t", "app:v1!")
	flag("tag digest", "invalid tag", "-t", "app@sha256:0000000000000000000000000000000000000000000000000000000000000000")
	flag("push without tag", "--push needs at least one -t", "--push")
	flag("sbom format", "invalid --sbom \"swid\"", "--sbom", "swid")
	// Bases.
	flag("base layout missing", "is not an OCI layout", "--base", "oci:/nonexistent/layout")
	flag("base layout tag missing", "is not an OCI layout", "--base", "oci:"+os.TempDir()+":nope")
	flag("base bad reference", "invalid base image", "--base", "UPPER/case:tag")
	flag("base unreachable", "cannot reach registry 127.0.0.1:1", "--base", "127.0.0.1:1/base:1")
	// Registry flags.
	flag("registry ca missing", "--registry-ca", "--registry-ca", "/nonexistent/ca.pem")
	// Signing.
	flag("sign key missing", "--sign-key: open /nonexistent/cosign.key", "--sign-key", "/nonexistent/cosign.key", "--push", "-t", "127.0.0.1:1/x/y:z")
	flag("sign key and keyless", "--sign-key and --sign-keyless both given", "--sign-key", "k", "--sign-keyless", "--push", "-t", "127.0.0.1:1/x/y:z")
	flag("sign without push", "add --push", "--sign-key", "k")
	// Provider, target, plan, config.
	flag("provider unknown", "unknown provider \"cobol\"", "--provider", "cobol")
	flag("provider wrong", "nothing to start", "--provider", "node")
	flag("target missing", "is not a main package", "--target", "./cmd/nothing")
	flag("target outside", "must be a directory inside the module", "--target", "../..")
	flag("plan missing", "--plan", "--plan", "/nonexistent/plan.json")
	flag("config missing", "--config", "--config", "/nonexistent/packer.toml")
	file("plan not JSON", "--plan", map[string]string{"plan.json": "not json"}, "--plan", "PLANFILE")
	file("plan unknown field", "--plan", map[string]string{"plan.json": `{"provider":"x","base":"scratch","colour":1}`}, "--plan", "PLANFILE")
	file("plan no layers", "plan has no layers", map[string]string{"plan.json": `{"provider":"x","base":"scratch"}`}, "--plan", "PLANFILE")
	file("plan no provider", "plan has no provider", map[string]string{"plan.json": `{"base":"scratch","layers":[{"name":"a","from":"src","dest":"/a"}]}`}, "--plan", "PLANFILE")
	file("plan relative dest", "must be an absolute path", map[string]string{"plan.json": `{"provider":"x","base":"scratch","layers":[{"name":"a","from":"src","dest":"a"}]}`}, "--plan", "PLANFILE")
	file("plan unknown step", "neither", map[string]string{"plan.json": `{"provider":"x","base":"scratch","layers":[{"name":"a","from":"ghost","dest":"/a"}]}`}, "--plan", "PLANFILE")
	file("plan step needs later", "which is not an earlier step", map[string]string{"plan.json": `{"provider":"x","base":"scratch","steps":[{"name":"a","run":["true"],"needs":["b"]}],"layers":[{"name":"a","from":"a","dest":"/a"}]}`}, "--plan", "PLANFILE")
	file("plan empty step", "has nothing to run", map[string]string{"plan.json": `{"provider":"x","base":"scratch","steps":[{"name":"a"}],"layers":[{"name":"a","from":"a","dest":"/a"}]}`}, "--plan", "PLANFILE")
	file("plan duplicate steps", "two steps are named", map[string]string{"plan.json": `{"provider":"x","base":"scratch","steps":[{"name":"a","run":["true"]},{"name":"a","run":["true"]}],"layers":[{"name":"a","from":"a","dest":"/a"}]}`}, "--plan", "PLANFILE")
	file("plan escaping include", "outside its source", map[string]string{"plan.json": `{"provider":"x","base":"scratch","layers":[{"name":"a","from":"src","include":["../x"],"dest":"/a"}]}`}, "--plan", "PLANFILE")
	file("plan bad system package", "is not a package name", map[string]string{"plan.json": `{"provider":"x","base":"scratch","system":{"run":["a;b"]},"layers":[{"name":"a","from":"src","dest":"/a"}]}`}, "--plan", "PLANFILE")
	// packer.toml.
	toml("unknown key", "colour = \"blue\"\n", `unknown key "colour"`)
	toml("misspelt key", "entrypont = [\"/app/x\"]\n", `did you mean "entrypoint"?`)
	toml("dash key", "stop-signal = \"SIGINT\"\n", `did you mean "stop_signal"?`)
	toml("bad TOML", "base = \n", "fix the TOML there")
	toml("unterminated string", "base = \"node\n", "fix the TOML there")
	toml("port type", "ports = \"8080\"\n", "ports must be a list of numbers")
	toml("port range", "ports = [70000]\n", "out of range")
	toml("executor", "executor = \"vm\"\n", "use auto, host or image")
	toml("user", "user = \"a b\"\n", "is not UID[:GID]")
	toml("workdir", "workdir = \"app\"\n", "is not an absolute path")
	toml("stop signal", "stop_signal = \"SIGNOPE\"\n", "is not a signal")
	toml("system package", "[system]\nrun = [\"x;y\"]\n", "is not a package name")
	toml("system unknown key", "[system]\npackages = [\"x\"]\n", `unknown key "system.packages"`)
	toml("healthcheck interval", "[healthcheck]\ncmd = \"true\"\ninterval = \"soon\"\n", "is not a duration")
	toml("healthcheck empty cmd", "[healthcheck]\ncmd = \"\"\n", "cmd is empty")
	toml("healthcheck unknown", "[healthcheck]\ncommand = \"true\"\n", `unknown key "healthcheck.command"`)
	toml("env not a table", "env = \"A=1\"\n", "packer.toml:1:7: env must be a table of strings")
	toml("platforms bad", "platforms = [\"linux\"]\n", "invalid --platform \"linux\"")
	// Context files.
	file(".dockerignore bad pattern", `.dockerignore:2: invalid pattern "[a-"`, map[string]string{".dockerignore": "*.md\n[a-\n"})
	file(".dockerignore drops go.mod", "go.mod is left out of the build context", map[string]string{".dockerignore": "go.mod\n"})
	file(".dockerignore drops everything go", "is left out of the build context", map[string]string{".dockerignore": "go.*\n"})
	file("go.mod broken", "parsing go.mod: go.mod:1:", map[string]string{"go.mod": "module\n"})
	file("go.mod removed, nothing left", "no supported app found", map[string]string{"go.mod": "", "main.go": "", "go.sum": ""})
	file("symlink escaping", `symlink points outside the build context`, map[string]string{"@link templates/leak": "../../../etc/passwd"})
	file("absolute symlink escaping", `symlink points outside the build context`, map[string]string{"@link escape": "/etc/passwd"})
	file("env file binary", "an env file?", map[string]string{"bin.env": "\x00\x01\x02 binary junk with spaces=1\n"}, "--env-file", "DIR/bin.env")
	file("env file no name", "no variable name before '='", map[string]string{"vars.env": "=1\n"}, "--env-file", "DIR/vars.env")
	// PACKER_* variables.
	cs = append(cs, badCase{name: "PACKER_PORT", args: []string{"ENV:PACKER_PORT=http"}, want: "PACKER_PORT"})
	cs = append(cs, badCase{name: "PACKER_EXECUTOR", args: []string{"ENV:PACKER_EXECUTOR=vm"}, want: "PACKER_EXECUTOR"})
	cs = append(cs, badCase{name: "PACKER_PLATFORM", args: []string{"ENV:PACKER_PLATFORM=linux"}, want: "PACKER_PLATFORM"})
	cs = append(cs, badCase{name: "PACKER_STOP_SIGNAL", args: []string{"ENV:PACKER_STOP_SIGNAL=SIGNOPE"}, want: "PACKER_STOP_SIGNAL"})
	cs = append(cs, badCase{name: "PACKER_SYSTEM_RUN", args: []string{"ENV:PACKER_SYSTEM_RUN=a;b"}, want: "PACKER_SYSTEM_RUN"})
	cs = append(cs, badCase{name: "PACKER_USER", args: []string{"ENV:PACKER_USER=a b"}, want: "PACKER_USER"})
	return cs
}

// TestBadInputCorpus: every case fails with a non-zero exit, its last
// stderr line an error naming the cause, nothing on stdout, no output
// written, and the app directory byte for byte as it was.
func TestBadInputCorpus(t *testing.T) {
	t.Parallel()
	cases := badInputs()
	if len(cases) < 100 {
		t.Errorf("the corpus holds %d cases, want at least 100", len(cases))
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			dir := testutil.CopyFixture(t, "go-server")
			for name, data := range c.files {
				if link, ok := strings.CutPrefix(name, "@link "); ok {
					os.Symlink(data, filepath.Join(dir, link))
					continue
				}
				p := filepath.Join(dir, name)
				if data == "" {
					os.Remove(p)
					continue
				}
				os.MkdirAll(filepath.Dir(p), 0o755)
				os.WriteFile(p, []byte(data), 0o644)
			}
			before := treeHash(t, dir)
			out := filepath.Join(t.TempDir(), "out")
			args := []string{"build", dir}
			env := cacheEnv(t)
			hasOutput := false
			for _, a := range c.args {
				switch {
				case strings.HasPrefix(a, "ENV:"):
					env = append(env, strings.TrimPrefix(a, "ENV:"))
					continue
				case a == "PLANFILE":
					a = filepath.Join(dir, "plan.json")
				case strings.HasPrefix(a, "DIR/"):
					a = filepath.Join(dir, strings.TrimPrefix(a, "DIR/"))
				case a == "-o" || a == "--push":
					hasOutput = true
				}
				args = append(args, a)
			}
			if !hasOutput {
				args = append(args, "-o", "oci:"+out)
			}
			r := packer(t, env, args...)
			if r.err == nil {
				t.Fatalf("packer %v succeeded, want an error", args[2:])
			}
			lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
			last := lines[len(lines)-1]
			if c.want == "" {
				t.Errorf("case %q names no expected error text; its error: %q", c.name, last)
			}
			if !strings.HasPrefix(last, "packer: error: ") || !strings.Contains(last, c.want) {
				t.Errorf("last line %q, want an error containing %q", last, c.want)
			}
			if len(last) > 600 {
				t.Errorf("the error line is %d bytes long", len(last))
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing", r.stdout)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was written", out)
			}
			if after := treeHash(t, dir); after != before {
				t.Errorf("the app directory changed")
			}
			if _, err := os.Stat(filepath.Join(dir, ".packer")); err == nil {
				t.Errorf("%s was left behind", filepath.Join(dir, ".packer"))
			}
		})
	}
}
