package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/packer-build/packer/config"
)

// WriteDocs writes the command reference (DIR/cli/*.md, from the cobra
// tree) and the settings reference (DIR/config.md, from config.Settings)
// under dir.
func WriteDocs(dir string) error {
	cli := filepath.Join(dir, "cli")
	if err := os.RemoveAll(cli); err != nil {
		return err
	}
	if err := os.MkdirAll(cli, 0o755); err != nil {
		return err
	}
	root := New()
	root.DisableAutoGenTag = true // no date: the pages change only with the commands
	var disable func(*cobra.Command)
	disable = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		for _, sub := range c.Commands() {
			disable(sub)
		}
	}
	disable(root)
	if err := doc.GenMarkdownTree(root, cli); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.md"), []byte(configDoc()), 0o644)
}

// configDoc is docs/config.md: each setting's packer.toml key, PACKER_*
// variable and flag, with its meaning, and the tables.
func configDoc() string {
	var b strings.Builder
	b.WriteString(`# packer.toml, PACKER_* variables and flags

Generated from packer's settings table (` + "`make docs`" + `). Each setting can be given in
` + "`packer.toml`" + ` (in the app's directory, or ` + "`--config FILE`" + `), as a ` + "`PACKER_*`" + ` variable, or as a flag;
a flag wins over a variable, which wins over packer.toml, which wins over what packer detected.
` + "`packer plan`" + ` prints where each value came from.

| packer.toml | variable | flag | meaning |
| --- | --- | --- | --- |
`)
	for _, s := range config.Settings {
		flag := ""
		if s.Flag != "" {
			flag = "`--" + s.Flag + "`"
			if s.Short != "" {
				flag += ", `-" + s.Short + "`"
			}
		}
		env := ""
		if s.Env != "" {
			env = "`" + s.Env + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", s.TOML, env, flag, strings.ReplaceAll(s.Usage, "|", `\|`))
	}
	b.WriteString(`
## Tables

| table | keys |
| --- | --- |
| ` + "`[env]`" + ` | ` + "`NAME = \"value\"`" + `: image ENV (steps do not see it) |
| ` + "`[build_args]`" + ` | ` + "`NAME = \"value\"`" + `: visible to build steps and written to the image as ENV |
| ` + "`[labels]`" + `, ` + "`[annotations]`" + ` | image labels; manifest annotations |
| ` + "`[healthcheck]`" + ` | ` + "`cmd`" + ` (a shell string or an argv list), ` + "`interval`" + `, ` + "`timeout`" + `, ` + "`start_period`" + `, ` + "`retries`" + ` |
| ` + "`[system]`" + ` | ` + "`build`" + `, ` + "`run`" + `: distribution packages for the steps only, or shipped |
| ` + "`[go]`" + ` | ` + "`ldflags`" + ` (template fields .Version .Commit .ShortCommit .Tag .Date .Git.* .Env.NAME), ` + "`flags`" + `, ` + "`tags`" + `, ` + "`env`" + `, ` + "`cgo`" + ` |

Also top level: ` + "`include`" + ` and ` + "`exclude`" + ` (.dockerignore patterns applied after .dockerignore).
`)
	return b.String()
}
