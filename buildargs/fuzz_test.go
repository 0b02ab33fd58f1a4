package buildargs

import (
	"bytes"
	"testing"
)

func noEnv(string) (string, bool) { return "", false }

// FuzzEnvFile: docker env files of any content parse or fail naming the
// line; a failure does not repeat more than a line's worth of the file.
func FuzzEnvFile(f *testing.F) {
	f.Add([]byte("A=1\n# c\nB\n  C=x y\n"))
	f.Add([]byte("\x00\x01binary"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, err := ParseEnvFile("env", bytes.NewReader(raw), noEnv)
		if err != nil && len(err.Error()) > 2048 {
			t.Fatalf("error of %d bytes", len(err.Error()))
		}
	})
}

// FuzzFlags: --build-arg, --env and --secret values never panic.
func FuzzFlags(f *testing.F) {
	for _, s := range []string{"A=1", "A", "=x", "id=npm,env=NPM_TOKEN", "id=x,src=/nonexistent", "id=,type=file"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _, _ = ParseBuildArg(s, noEnv)
		_, _, _ = ParseEnv(s, noEnv)
		_, _ = ParseSecret(s, noEnv)
	})
}
