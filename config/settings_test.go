package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/packer-build/packer/plan"
)

// TestSettingsTable: each row of Settings works from every source it
// names, with precedence flags > PACKER_* > packer.toml and the origin
// recorded; a new row without a sample here fails.
func TestSettingsTable(t *testing.T) {
	samples := map[string]struct{ toml, env string }{
		"provider":     {`"golang"`, "node"},
		"base":         {`"reg.example/base:1"`, "reg.example/base:2"},
		"target":       {`"./cmd/api"`, "./cmd/worker"},
		"executor":     {`"image"`, "host"},
		"entrypoint":   {`["/app/a", "x"]`, `/app/b "y z"`},
		"cmd":          {`["--a"]`, "--b"},
		"user":         {`"1:1"`, "2:2"},
		"workingDir":   {`"/srv"`, "/opt"},
		"ports":        {`[9090]`, "7000,7001"},
		"platforms":    {`["linux/arm64"]`, "linux/amd64,linux/arm64"},
		"stopSignal":   {`"SIGINT"`, "SIGQUIT"},
		"healthPath":   {`"/ready"`, "/healthz"},
		"livenessPath": {`"/live"`, "/alive"},
		"volumes":      {`["/data"]`, ""},
		"system.build": {`["gcc"]`, "libpq-dev,make"},
		"system.run":   {`["libpq5"]`, "libpq5=17.6-0+deb13u1"},
	}
	fileKeys := map[string]bool{}
	for _, k := range validKeys(nil) {
		fileKeys[k] = true
	}
	flags := map[string]bool{}
	for _, s := range Settings {
		t.Run(s.Key, func(t *testing.T) {
			sample, ok := samples[s.Key]
			if !ok {
				t.Fatalf("no sample for setting %q: add one to this test", s.Key)
			}
			if table, key, dotted := strings.Cut(s.TOML, "."); dotted {
				if !slices.Contains(validKeys([]string{table}), key) {
					t.Errorf("packer.toml key %q is not a field of [%s]", s.TOML, table)
				}
			} else if !fileKeys[s.TOML] {
				t.Errorf("packer.toml key %q is not a field of File", s.TOML)
			}
			if s.Env != "" && !strings.HasPrefix(s.Env, "PACKER_") {
				t.Errorf("variable %q does not start with PACKER_", s.Env)
			}
			if flags[s.Flag] {
				t.Errorf("flag --%s is used twice", s.Flag)
			}
			flags[s.Flag] = true

			f, lines, err := Parse("packer.toml", []byte(fmt.Sprintf("# settings\n%s = %s\n", s.TOML, sample.toml)))
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			layers := []*Overrides{f.Overrides("packer.toml", lines)}
			if got := Merge(layers...).Origin(s.Key); got != "packer.toml:2" {
				t.Errorf("from packer.toml: origin %q, want packer.toml:2", got)
			}
			want := "packer.toml:2"
			if s.Env != "" && sample.env != "" {
				env, err := EnvOverrides(func(k string) (string, bool) { return sample.env, k == s.Env })
				if err != nil {
					t.Fatalf("EnvOverrides() = %v", err)
				}
				layers = append(layers, env)
				want = s.Env
				if got := Merge(layers...).Origin(s.Key); got != want {
					t.Errorf("env over file: origin %q, want %s", got, want)
				}
			}
			flag := NewOverrides()
			v, err := s.Parse([]string{strings.Trim(sample.env+" ", " ")})
			if sample.env == "" {
				v, err = s.Parse([]string{"/flag"})
			}
			if err != nil {
				t.Fatalf("Parse(flag value) = %v", err)
			}
			flag.Set(s.Key, v, "--"+s.Flag)
			m := Merge(append(layers, flag)...)
			if got := m.Origin(s.Key); got != "--"+s.Flag {
				t.Errorf("flag over all: origin %q, want --%s", got, s.Flag)
			}
			if s.Apply != nil {
				p := &plan.Plan{Provider: "test", Base: "x", Env: map[string]string{}}
				m.Apply(p)
				if p.Origins[s.Key] != "--"+s.Flag {
					t.Errorf("Apply: plan origin %q, want --%s", p.Origins[s.Key], s.Flag)
				}
			}
		})
	}
}

// TestBadTextSettingInFile: packer.toml's text settings are checked as
// their flags are, and the error names the key.
func TestBadTextSettingInFile(t *testing.T) {
	_, _, err := Parse("packer.toml", []byte("executor = \"docker\"\n"))
	if err == nil || !strings.Contains(err.Error(), `packer.toml: executor = "docker": use auto, host or image`) {
		t.Fatalf("Parse() = %v, want the executor error", err)
	}
}

// TestBadSystemPackage: a package name that could smuggle shell words is
// refused from packer.toml, as from the flag.
func TestBadSystemPackage(t *testing.T) {
	_, _, err := Parse("packer.toml", []byte("[system]\nrun = [\"libpq5; rm -rf /\"]\n"))
	if err == nil || !strings.Contains(err.Error(), `packer.toml: [system] run: "libpq5; rm -rf /" is not a package name`) {
		t.Fatalf("Parse() = %v", err)
	}
}

// TestSettingValidation: values docker would refuse are refused, naming
// the value and what to give instead; the ones it takes are normalised.
func TestSettingValidation(t *testing.T) {
	for _, c := range []struct {
		key, value, want string
	}{
		{"user", "abc:def", ""},
		{"user", "65532", ""},
		{"user", "1000:1000", ""},
		{"user", "a b", `"a b" is not UID[:GID]`},
		{"user", "1000:", `"1000:" is not UID[:GID]`},
		{"user", "-1", `"-1" is not UID[:GID]`},
		{"stopSignal", "SIGINT", ""},
		{"stopSignal", "quit", ""},
		{"stopSignal", "15", ""},
		{"stopSignal", "SIGRTMIN+3", ""},
		{"stopSignal", "SIGNOPE", `"SIGNOPE" is not a signal`},
		{"stopSignal", "99", "signal 99 is out of range 1-64"},
		{"workingDir", "/srv/app/", ""},
		{"workingDir", "relative/dir", `"relative/dir" is not an absolute path`},
	} {
		s, _ := SettingFor(c.key)
		v, err := s.Parse([]string{c.value})
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %q: %v", c.key, c.value, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %q = %v, %v; want an error containing %q", c.key, c.value, v, err, c.want)
		}
	}
	s, _ := SettingFor("stopSignal")
	if v, _ := s.Parse([]string{"quit"}); v != "SIGQUIT" {
		t.Errorf("stop signal quit = %v, want SIGQUIT", v)
	}
	s, _ = SettingFor("workingDir")
	if v, _ := s.Parse([]string{"/srv/app/"}); v != "/srv/app" {
		t.Errorf("workdir /srv/app/ = %v, want /srv/app", v)
	}
}
