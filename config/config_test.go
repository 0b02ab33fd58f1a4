package config

import (
	"reflect"
	"strings"
	"testing"

	"github.com/packer-build/packer/plan"
)

const sample = `# packer.toml
provider = "golang"
base = "registry.example/base:1"
entrypoint = ["/app/server", "--serve"]
user = "1000:1000"
workdir = "/srv"
ports = [9090, 9091]
platforms = ["linux/amd64", "linux/arm64"]
include = ["docs/keep.md"]
exclude = ["*.md"]
stop_signal = "SIGINT"
volumes = ["/data"]

[env]
LOG_LEVEL = "debug"

[build_args]
VERSION = "1.2.3"

[labels]
"org.opencontainers.image.title" = "server"

[annotations]
team = "core"

[healthcheck]
cmd = ["/app/server", "health"]
interval = "10s"
timeout = "2s"
retries = 5
`

func TestParseValid(t *testing.T) {
	f, lines, err := Parse("packer.toml", []byte(sample))
	if err != nil {
		t.Fatalf("Parse() = %v", err)
	}
	if f.Base != "registry.example/base:1" || f.Ports[1] != 9091 || f.Env["LOG_LEVEL"] != "debug" || f.Healthcheck.Retries != 5 {
		t.Errorf("Parse() = %+v", f)
	}
	if lines["base"] != 3 || lines["env.LOG_LEVEL"] != 15 {
		t.Errorf("lines = %v", lines)
	}
	o := f.Overrides("packer.toml", lines)
	if o.Origin("base") != "packer.toml:3" || o.Origin("env.LOG_LEVEL") != "packer.toml:15" {
		t.Errorf("origins = %v", o.origins)
	}
	if !reflect.DeepEqual(o.Context, []string{"*.md", "!docs/keep.md"}) {
		t.Errorf("context = %q", o.Context)
	}
	if !reflect.DeepEqual(o.Healthcheck.Test, []string{"CMD", "/app/server", "health"}) {
		t.Errorf("healthcheck = %+v", o.Healthcheck)
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		description, in, want string
	}{
		{"misspelt key", "base = \"x\"\nentrypiont = [\"/a\"]\n", `packer.toml:2: unknown key "entrypiont"; did you mean "entrypoint"?`},
		{"misspelt table key", "[healthcheck]\ncmd = \"true\"\nintervall = \"1s\"\n", `packer.toml:3: unknown key "healthcheck.intervall"; did you mean "interval"?`},
		{"dash instead of underscore", "stop-signal = \"SIGINT\"\n", `did you mean "stop_signal"?`},
		{"unknown, nothing near", "\n\nfrobnicate = 1\n", `packer.toml:3: unknown key "frobnicate"; see README.md`},
		{"syntax error", "base = \"unterminated\n", "packer.toml:1:"},
		{"wrong type", "ports = \"8080\"\n", "packer.toml:1:"},
		{"port range", "ports = [0]\n", "port 0 is out of range"},
		{"bad duration", "[healthcheck]\ncmd = \"true\"\ninterval = \"often\"\n", `interval = "often" is not a duration`},
		{"healthcheck without cmd", "[healthcheck]\ninterval = \"1s\"\n", "needs cmd"},
	} {
		t.Run(tc.description, func(t *testing.T) {
			_, _, err := Parse("packer.toml", []byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse() = %v, want %q", err, tc.want)
			}
		})
	}
}

func detected() *plan.Plan {
	return &plan.Plan{
		Provider: "golang", Base: plan.BaseStatic, Entrypoint: []string{"/app/x"}, Cmd: []string{"serve"},
		User: "65532:65532", WorkingDir: "/app", Ports: []int{8080}, Env: map[string]string{"PORT": "8080"},
		Layers: []plan.Layer{{Name: "app", From: plan.FromSource, Dest: "/app"}},
	}
}

func TestPrecedence(t *testing.T) {
	file, lines, err := Parse("packer.toml", []byte("base = \"from-file\"\nuser = \"1:1\"\nworkdir = \"/file\"\n[env]\nA = \"file\"\nB = \"file\"\n[build_args]\nV = \"file\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	envO, err := EnvOverrides(func(k string) (string, bool) {
		v, ok := map[string]string{"PACKER_BASE": "from-env", "PACKER_USER": "2:2", "PACKER_PORT": "7000"}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	flags := NewOverrides()
	flags.Set("base", "from-flag", "--base")
	flags.Env = map[string]string{"B": "flag"}
	flags.SetOrigin("env.B", "--env")

	for _, tc := range []struct {
		description string
		layers      []*Overrides
		check       func(t *testing.T, p *plan.Plan)
	}{
		{"detection alone", nil, func(t *testing.T, p *plan.Plan) {
			if p.Base != plan.BaseStatic || p.Origins["base"] != "detected by golang" {
				t.Errorf("base %s from %s", p.Base, p.Origins["base"])
			}
		}},
		{"file over detection", []*Overrides{file.Overrides("packer.toml", lines)}, func(t *testing.T, p *plan.Plan) {
			if p.Base != "from-file" || p.Origins["base"] != "packer.toml:1" || p.WorkingDir != "/file" {
				t.Errorf("base %s from %s, workdir %s", p.Base, p.Origins["base"], p.WorkingDir)
			}
			if p.Env["V"] != "file" || p.BuildArgs["V"] != "file" || p.Origins["env.V"] != "packer.toml:8" {
				t.Errorf("build arg not mapped to ENV: env %v args %v origins %v", p.Env, p.BuildArgs, p.Origins)
			}
		}},
		{"env over file", []*Overrides{file.Overrides("packer.toml", lines), envO}, func(t *testing.T, p *plan.Plan) {
			if p.Base != "from-env" || p.Origins["base"] != "PACKER_BASE" || p.User != "2:2" || p.WorkingDir != "/file" {
				t.Errorf("base %s from %s, user %s", p.Base, p.Origins["base"], p.User)
			}
			if p.Ports[0] != 7000 || p.Env["PORT"] != "7000" || p.Origins["env.PORT"] != "PACKER_PORT" {
				t.Errorf("ports %v env %v", p.Ports, p.Env)
			}
		}},
		{"flags over everything", []*Overrides{file.Overrides("packer.toml", lines), envO, flags}, func(t *testing.T, p *plan.Plan) {
			if p.Base != "from-flag" || p.Origins["base"] != "--base" || p.User != "2:2" {
				t.Errorf("base %s from %s", p.Base, p.Origins["base"])
			}
			if p.Env["A"] != "file" || p.Env["B"] != "flag" || p.Origins["env.B"] != "--env" || p.Origins["env.A"] != "packer.toml:5" {
				t.Errorf("env %v origins %v", p.Env, p.Origins)
			}
		}},
	} {
		t.Run(tc.description, func(t *testing.T) {
			p := detected()
			Merge(tc.layers...).Apply(p)
			tc.check(t, p)
		})
	}

	t.Run("entrypoint resets detected cmd", func(t *testing.T) {
		o := NewOverrides()
		o.Set("entrypoint", []string{"/bin/other"}, "--entrypoint")
		p := detected()
		Merge(o).Apply(p)
		if p.Cmd != nil || p.Entrypoint[0] != "/bin/other" {
			t.Errorf("entrypoint %v cmd %v", p.Entrypoint, p.Cmd)
		}
	})
}

func TestSplitCommand(t *testing.T) {
	for in, want := range map[string][]string{
		`/app/server --port 80`:    {"/app/server", "--port", "80"},
		`sh -c "echo hi there"`:    {"sh", "-c", "echo hi there"},
		`["node", "dist/main.js"]`: {"node", "dist/main.js"},
		`a 'b c' d\ e`:             {"a", "b c", "d e"},
		`x ""`:                     {"x", ""},
	} {
		got, err := SplitCommand(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("SplitCommand(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{`"unterminated`, `["not", json`, "   "} {
		if _, err := SplitCommand(bad); err == nil {
			t.Errorf("SplitCommand(%q) succeeded", bad)
		}
	}
}

// TestTypeErrorsInFileWords: a value of the wrong type names the key and
// what it takes, not Go's types.
func TestTypeErrorsInFileWords(t *testing.T) {
	for body, want := range map[string]string{
		"ports = \"8080\"\n": "packer.toml:1:9: ports must be a list of numbers ([8080]), not a TOML string",
		"env = \"A=1\"\n":    "packer.toml:1:7: env must be a table of strings",
		"[healthcheck]\ncmd = \"x\"\nretries = \"3\"\n": "healthcheck.retries must be a number",
		"base = 3\n": "base must be a string (in quotes), not a TOML integer",
	} {
		_, _, err := Parse("packer.toml", []byte(body))
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "config.File") {
			t.Errorf("%q: %v, want %q", body, err, want)
		}
	}
}
