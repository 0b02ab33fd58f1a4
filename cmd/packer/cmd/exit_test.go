package cmd

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packer-build/packer/config"
	"github.com/packer-build/packer/registry"
)

// TestCommandLineErrors: command line mistakes are usage errors (exit 2)
// naming the help, with the nearest flag or command, and what packer
// offers for a docker buildx flag.
func TestCommandLineErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"build", "--tagg", "x"}, "unknown flag: --tagg: did you mean --tag? (see packer build --help)"},
		{[]string{"build", "--build-context", "x=y"}, "packer builds one directory"},
		{[]string{"build", "-f", "Dockerfile"}, "packer needs no Dockerfile"},
		{[]string{"plan", "--jsn"}, "did you mean --json?"},
		{[]string{"build", "a", "b"}, "accepts at most 1 arg(s), received 2 (see packer build --help)"},
		{[]string{"bild"}, `unknown command "bild" for "packer"; did you mean build? (see packer --help)`},
	} {
		c := New()
		c.SetArgs(tc.args)
		c.SetOut(&strings.Builder{})
		c.SetErr(&strings.Builder{})
		err := c.Execute()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
		if ExitCode(err) != ExitUsage {
			t.Errorf("%v: exit %d, want %d", tc.args, ExitCode(err), ExitUsage)
		}
	}
	if ExitCode(errors.New("step build failed")) != ExitBuild || ExitCode(&VerifyError{errors.New("x")}) != ExitVerify {
		t.Errorf("exit codes of a build and a verification error")
	}
	if !registry.IsRegistryError(&registry.StallError{}) || ExitCode(&registry.StallError{}) != ExitRegistry {
		t.Errorf("a stalled registry is not exit %d", ExitRegistry)
	}
}

// TestGoOptions: [go] ldflags expand their template fields; an unknown
// field, and env taking GOOS/GOARCH/CGO_ENABLED, are refused.
func TestGoOptions(t *testing.T) {
	t.Setenv("RELEASE", "r7")
	dir := t.TempDir() // not a git work tree
	o, err := goOptions(dir, &config.Go{Ldflags: []string{"-X main.v={{.Version}}", "-X main.r={{.Env.RELEASE}}"}, Tags: []string{"netgo"}})
	if err != nil || strings.Join(o.Ldflags, " ") != "-X main.v=dev -X main.r=r7" || o.Tags[0] != "netgo" {
		t.Errorf("goOptions = %+v, %v", o, err)
	}
	if _, err := goOptions(dir, &config.Go{Ldflags: []string{"-X main.v={{.Verison}}"}}); err == nil || !strings.Contains(err.Error(), "the fields are .Version") {
		t.Errorf("an unknown field: %v", err)
	}
	if _, err := goOptions(dir, &config.Go{Env: map[string]string{"GOARCH": "arm64"}}); err == nil || !strings.Contains(err.Error(), "GOARCH is packer's to set") {
		t.Errorf("env GOARCH: %v", err)
	}
}

// TestDocsUpToDate: docs/cli/ and docs/config.md are what `make docs`
// writes from the commands and the settings table.
func TestDocsUpToDate(t *testing.T) {
	tmp := t.TempDir()
	if err := WriteDocs(tmp); err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join("..", "..", "..", "docs")
	err := filepath.WalkDir(tmp, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tmp, p)
		want, _ := os.ReadFile(p)
		got, err := os.ReadFile(filepath.Join(repo, rel))
		if err != nil || string(got) != string(want) {
			t.Errorf("docs/%s is stale or missing: run make docs", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	committed, _ := filepath.Glob(filepath.Join(repo, "cli", "*.md"))
	generated, _ := filepath.Glob(filepath.Join(tmp, "cli", "*.md"))
	if len(committed) != len(generated) {
		t.Errorf("docs/cli has %d pages, the commands %d: run make docs", len(committed), len(generated))
	}
}
