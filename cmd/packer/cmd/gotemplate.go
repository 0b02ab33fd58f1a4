package cmd

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/packer-build/packer/config"
	"github.com/packer-build/packer/detect"
)

// goOptions turns packer.toml's [go] table into the provider's options,
// expanding the template fields of ldflags (and flags) as ko does: the
// git describe version, commit, tag and commit date of the app's
// directory, and the environment. The values come from the commit, not
// the clock, so a rebuild of the same commit gives the same binary.
func goOptions(dir string, g *config.Go) (detect.GoOptions, error) {
	if g == nil {
		return detect.GoOptions{}, nil
	}
	for k := range g.Env {
		switch k {
		case "GOOS", "GOARCH", "CGO_ENABLED":
			return detect.GoOptions{}, fmt.Errorf("packer.toml [go] env: %s is packer's to set (use --platform, or cgo = true)", k)
		}
	}
	data := goTemplateData(dir)
	expand := func(what string, in []string) ([]string, error) {
		var out []string
		for _, s := range in {
			t, err := template.New(what).Option("missingkey=error").Parse(s)
			if err != nil {
				return nil, fmt.Errorf("packer.toml [go] %s %q: %v", what, s, err)
			}
			var b bytes.Buffer
			if err := t.Execute(&b, data); err != nil {
				return nil, fmt.Errorf("packer.toml [go] %s %q: %v; the fields are .Version .Commit .ShortCommit .Tag .Date .Git.* and .Env.NAME", what, s, err)
			}
			out = append(out, b.String())
		}
		return out, nil
	}
	ldflags, err := expand("ldflags", g.Ldflags)
	if err != nil {
		return detect.GoOptions{}, err
	}
	flags, err := expand("flags", g.Flags)
	if err != nil {
		return detect.GoOptions{}, err
	}
	return detect.GoOptions{Ldflags: ldflags, Flags: flags, Tags: g.Tags, Env: g.Env, Cgo: g.Cgo}, nil
}

// goTemplateData are the fields: .Version (git describe --tags --always
// --dirty, "dev" outside git), .Commit, .ShortCommit, .Tag, .Date (the
// commit's time, RFC 3339), ko's .Git.{Tag,ShortCommit,FullCommit,Branch,
// CommitDate,CommitTimestamp}, and .Env.NAME.
func goTemplateData(dir string) map[string]any {
	gitOr := func(def string, args ...string) string {
		if out, err := git(dir, args...); err == nil && out != "" {
			return out
		}
		return def
	}
	full := gitOr("", "rev-parse", "HEAD")
	short := gitOr("", "rev-parse", "--short=12", "HEAD")
	tag := gitOr("", "describe", "--tags", "--abbrev=0")
	ts, _ := strconv.ParseInt(gitOr("0", "log", "-1", "--format=%ct"), 10, 64)
	date := ""
	if full != "" {
		date = time.Unix(ts, 0).UTC().Format(time.RFC3339)
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return map[string]any{
		"Version": gitOr("dev", "describe", "--tags", "--always", "--dirty"),
		"Commit":  full, "ShortCommit": short, "Tag": tag, "Date": date,
		"Git": map[string]any{
			"Tag": tag, "ShortCommit": short, "FullCommit": full, "Branch": gitOr("", "rev-parse", "--abbrev-ref", "HEAD"),
			"CommitDate": date, "CommitTimestamp": ts,
		},
		"Env": env,
	}
}
