package cmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/packer-build/packer/config"
)

func TestParsePlatforms(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string
		wantErr string
	}{
		{"linux/amd64", "linux/amd64", ""},
		{"linux/amd64, linux/arm64", "linux/amd64,linux/arm64", ""},
		{"linux/arm/v7", "linux/arm/v7", ""},
		{"linux/amd65", "", `unknown architecture "amd65"`},
		{"linux", "", "want OS/ARCH"},
		{"windows/amd64", "", "packer builds linux images"},
		{"linux/amd64,linux/amd64", "", "lists linux/amd64 twice"},
		{"linux/amd64,", "", "want OS/ARCH"},
	} {
		ps, err := config.ParsePlatforms(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("config.ParsePlatforms(%q) = %v, want error containing %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("config.ParsePlatforms(%q) = %v", tc.in, err)
			continue
		}
		if got := platformList(ps); got != tc.want {
			t.Errorf("config.ParsePlatforms(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
	if ps, err := config.ParsePlatforms(""); err != nil || len(ps) != 1 || ps[0].OS != "linux" {
		t.Errorf("config.ParsePlatforms(\"\") = %v, %v", ps, err)
	}
}

func TestCreationTime(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	got, from, err := creationTime(dir)
	if err != nil || !got.Equal(time.Unix(1700000000, 0)) || from != "SOURCE_DATE_EPOCH" {
		t.Errorf("creationTime = %v, %q, %v", got, from, err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "yesterday")
	if _, _, err := creationTime(dir); err == nil || !strings.Contains(err.Error(), "SOURCE_DATE_EPOCH") {
		t.Errorf("creationTime with a bad SOURCE_DATE_EPOCH = %v", err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "")
	got, _, err = creationTime(dir)
	if err != nil || !got.Equal(time.Unix(0, 0)) {
		t.Errorf("creationTime outside git = %v, %v", got, err)
	}

	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("SKIP: git is not installed; the git commit time check did not run")
	}
	gitc := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_COMMITTER_DATE=2023-01-02T03:04:05Z", "GIT_AUTHOR_DATE=2023-01-02T03:04:05Z",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitc("init", "-q")
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	gitc("add", "f")
	gitc("commit", "-q", "-m", "c")
	gitc("remote", "add", "origin", "https://user:token@git.example/team/app.git")
	got, from, err = creationTime(dir)
	if err != nil || !got.Equal(time.Date(2023, 1, 2, 3, 4, 5, 0, time.UTC)) || from != "git HEAD commit time" {
		t.Errorf("creationTime in git = %v, %q, %v", got, from, err)
	}
	labels := gitLabels(dir)
	if len(labels["org.opencontainers.image.revision"]) != 40 {
		t.Errorf("revision label = %q", labels["org.opencontainers.image.revision"])
	}
	if src := labels["org.opencontainers.image.source"]; src != "https://git.example/team/app.git" {
		t.Errorf("source label = %q, want credentials stripped", src)
	}
}

func TestInside(t *testing.T) {
	for _, tc := range []struct {
		dir, p, rel string
		ok          bool
	}{
		{"app", "app/out", "out", true},
		{"app", "out", "", false},
		{"app", "app", "", false},
		{"app", "app/../app2", "", false},
	} {
		rel, ok := inside(tc.dir, tc.p)
		if rel != tc.rel || ok != tc.ok {
			t.Errorf("inside(%q, %q) = %q, %v", tc.dir, tc.p, rel, ok)
		}
	}
}

// TestAboutBuild: the version line names the commit and date from the VCS
// stamp, or from a pseudo-version (go install module@commit).
func TestAboutBuild(t *testing.T) {
	for _, tc := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-05T06:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			"packer dev (commit 0123456789ab (modified), 2026-12-05T06:00:00Z)"},
		{debug.BuildInfo{Main: debug.Module{Version: "v0.0.0-20261205060000-0123456789ab"}},
			"packer v0.0.0-20261205060000-0123456789ab (commit 0123456789ab, 2026-12-05T06:00:00Z)"},
		{debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}}, "packer v1.2.3"},
	} {
		if got := aboutBuild(&tc.bi, true).String(); got != tc.want {
			t.Errorf("aboutBuild = %q, want %q", got, tc.want)
		}
	}
}
