package layers

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadDockerignoreLine: a broken pattern is named with its line.
func TestBadDockerignoreLine(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, ".dockerignore"), []byte("# comment\nnode_modules\n\nlogs/[a-\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadIgnore(dir, nil, nil)
	if err == nil || !strings.HasPrefix(err.Error(), `.dockerignore:4: invalid pattern "logs/[a-": `) || !strings.HasSuffix(err.Error(), "fix or remove that line") {
		t.Fatalf("LoadIgnore() = %v", err)
	}
}
