package layers

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDockerignore: any .dockerignore loads or fails naming its line,
// and a loaded one answers for any path without panicking.
func FuzzDockerignore(f *testing.F) {
	f.Add([]byte("node_modules\n!keep\n**/*.log\n# c\n"), "a/b.log")
	f.Add([]byte("[a-\n"), "x")
	f.Add([]byte("!\n/\n**\n"), "../x")
	f.Fuzz(func(t *testing.T, raw []byte, rel string) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
		ig, err := LoadIgnore(dir, nil, nil)
		if err != nil {
			return
		}
		_, _, _ = ig.Excluded(rel, false)
		_, _, _ = ig.Excluded(rel, true)
	})
}
