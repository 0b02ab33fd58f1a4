package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"

	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/scaleout"
)

// madeMark is in the first lines of the files packer dockerfile writes:
// those it may write again; any other file there is the user's.
const madeMark = "Made by `packer dockerfile`"

func newDockerfile(ro *rootOptions) *cobra.Command {
	o := &planOptions{}
	var output string
	var secrets []string
	c := &cobra.Command{
		Use:   "dockerfile [DIR]",
		Short: "Print a multi-stage Dockerfile equivalent to the plan, for any engine (buildx, buildah, podman, kaniko)",
		Long: "Print a multi-stage Dockerfile equivalent to packer's plan for DIR (default .): a stage per step (a dependency\n" +
			"install copies only its lockfile and manifests, so its cache survives source changes), a slim non-root runtime\n" +
			"stage taking the plan's layers in order, build args as ENV, secrets as RUN --mount=type=secret.\n" +
			"--output DIR writes DIR/Dockerfile and the matching DIR/.dockerignore instead (DIR is then the build context).",
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			var secs []scaleout.Secret
			for _, s := range secrets {
				sec, err := parseSecretSpec(s)
				if err != nil {
					return &UsageError{err}
				}
				secs = append(secs, sec)
			}
			p, _, err := o.makePlan(c, dir)
			if err != nil {
				return err
			}
			ig, err := layers.LoadIgnore(dir, p.Exclude, p.Context)
			if err != nil {
				return err
			}
			files, err := layers.Collect(dir, ig, nil)
			if err != nil {
				return err
			}
			var context []string
			for _, f := range files {
				context = append(context, f.Rel)
			}
			df, err := scaleout.Dockerfile(p, scaleout.Options{Context: context, Secrets: secs})
			if err != nil {
				return err
			}
			if output == "" {
				_, err = c.OutOrStdout().Write(df)
				return err
			}
			user := p.Context
			var byContent []string
			for _, s := range ig.Secrets() {
				if !s.Shipped {
					byContent = append(byContent, s.Rel)
				}
			}
			ignoreName := ".dockerignore"
			if raw, err := os.ReadFile(filepath.Join(output, ignoreName)); err == nil && !bytes.Contains(firstLines(raw, 3), []byte(madeMark)) {
				// The project's own stays as it is: BuildKit reads
				// Dockerfile.dockerignore for this Dockerfile instead.
				ignoreName = "Dockerfile.dockerignore"
				if pats, err := ignorefile.ReadAll(bytes.NewReader(raw)); err == nil {
					user = append(pats, user...)
				}
			} else if err == nil && filepath.Clean(output) == filepath.Clean(dir) {
				user = append(ourUserPatterns(raw), user...)
			} else if uraw, err := os.ReadFile(filepath.Join(dir, ".dockerignore")); err == nil && !bytes.Contains(firstLines(uraw, 3), []byte(madeMark)) {
				if pats, err := ignorefile.ReadAll(bytes.NewReader(uraw)); err == nil {
					user = append(pats, user...)
				}
			}
			di := scaleout.DockerIgnore(layers.DefaultExcludes, p.Exclude, user, byContent)
			if err := os.MkdirAll(output, 0o755); err != nil {
				return err
			}
			for _, f := range []struct {
				name string
				data []byte
			}{{"Dockerfile", df}, {ignoreName, di}} {
				if err := writeOurs(filepath.Join(output, f.name), f.data); err != nil {
					return err
				}
			}
			fmt.Fprintf(c.ErrOrStderr(), "wrote %s and %s; build with: docker buildx build -t IMAGE %s\n",
				filepath.Join(output, "Dockerfile"), filepath.Join(output, ignoreName), output)
			if ignoreName != ".dockerignore" {
				fmt.Fprintf(c.ErrOrStderr(), "the project's .dockerignore is left as it is; %s holds its patterns and packer's (BuildKit reads it for this Dockerfile; for buildah or podman pass --ignorefile %s)\n", ignoreName, filepath.Join(output, ignoreName))
			}
			return nil
		},
	}
	o.addFlags(c, false)
	c.Flags().StringVarP(&output, "output", "o", "", "write DIR/Dockerfile and DIR/.dockerignore instead of printing the Dockerfile")
	c.Flags().StringArrayVar(&secrets, "secret", nil, "id=NAME,env=VAR or id=NAME,src=FILE, as for packer build: each step mounts it (RUN --mount=type=secret); the value is not read")
	return c
}

// parseSecretSpec reads --secret's id and kind without reading the value.
func parseSecretSpec(s string) (scaleout.Secret, error) {
	var sec scaleout.Secret
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return sec, fmt.Errorf("invalid --secret %q: %q is not key=value; use id=NAME,env=VAR or id=NAME,src=FILE", s, part)
		}
		switch k {
		case "id":
			sec.ID = v
		case "env":
			sec.Env = true
		case "type":
			sec.Env = sec.Env || v == "env"
		case "src", "source", "required":
		default:
			return sec, fmt.Errorf("invalid --secret %q: unknown key %q; use id=NAME,env=VAR or id=NAME,src=FILE", s, k)
		}
	}
	if sec.ID == "" {
		return sec, fmt.Errorf("invalid --secret %q: no id; use id=NAME,env=VAR or id=NAME,src=FILE", s)
	}
	return sec, nil
}

// ourUserPatterns returns the user section of a .dockerignore packer
// dockerfile wrote.
func ourUserPatterns(raw []byte) []string {
	var out []string
	in := false
	for _, line := range strings.Split(string(raw), "\n") {
		switch {
		case strings.HasPrefix(line, "# this project's own"):
			in = true
		case strings.HasPrefix(line, "#"):
			in = false
		case in && strings.TrimSpace(line) != "":
			out = append(out, line)
		}
	}
	return out
}

// writeOurs writes path atomically, refusing to replace a file that
// packer dockerfile did not write.
func writeOurs(path string, data []byte) error {
	old, err := os.ReadFile(path)
	switch {
	case err == nil && !bytes.Contains(firstLines(old, 3), []byte(madeMark)):
		return fmt.Errorf("%s exists and packer did not write it: move it away, or write elsewhere with --output DIR", path)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return err
	}
	return layers.WriteFileAtomic(path, data, 0o644)
}

func firstLines(b []byte, n int) []byte {
	for i, c := range b {
		if c == '\n' {
			n--
			if n == 0 {
				return b[:i]
			}
		}
	}
	return b
}
