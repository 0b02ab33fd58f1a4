// Command gendocs writes docs/cli/ (one Markdown page per command, from
// the cobra tree) and docs/config.md (every setting, from config.Settings).
// `make docs` runs it; a test fails when the committed pages are stale.
package main

import (
	"fmt"
	"os"

	"github.com/packer-build/packer/cmd/packer/cmd"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendocs DOCS_DIR")
		os.Exit(2)
	}
	if err := cmd.WriteDocs(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}
