package testutil

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var goBase onceBase

// GoBuilderBase returns "oci:DIR:go": the Debian test base with this Go
// toolchain in /usr/local/go, laid out as the official golang images
// have it (GOPATH /go, PATH), for engines that run a Go build inside an
// image. The toolchain is the Go module proxy's golang.org/toolchain
// module of this Go version. Built once per TestCacheDir.
func GoBuilderBase(t testing.TB) string {
	t.Helper()
	debian := DebianBase(t)
	return goBase.get(t, "Go builder", func() (string, error) { return ensureGoBase(debian) })
}

// EnsureGoBuilderBase builds (once per TestCacheDir) and returns
// GoBuilderBase's reference, outside a test (the benchmarks).
func EnsureGoBuilderBase() (string, error) {
	debian, err := EnsureDebianBase()
	if err != nil {
		return "", err
	}
	return ensureGoBase(debian)
}

func ensureGoBase(debian string) (string, error) {
	dir, err := TestCacheDir()
	if err != nil {
		return "", err
	}
	_, debianLayout := debianPaths(dir)
	version := runtime.Version()
	layoutDir := filepath.Join(dir, fmt.Sprintf("%s-oci-%s-%s", version, runtime.GOARCH, filepath.Base(debianLayout)))
	if _, err := os.Stat(filepath.Join(layoutDir, "index.json")); err == nil {
		return "oci:" + layoutDir + ":go", nil
	}
	mod := fmt.Sprintf("golang.org/toolchain@v0.0.1-%s.linux-%s", version, runtime.GOARCH)
	cmd := exec.Command("go", "mod", "download", "-json", mod)
	cmd.Dir = os.TempDir()
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GO111MODULE=on")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("go mod download %s: %w\n%s", mod, err, out)
	}
	var info struct{ Dir, Error string }
	if err := json.Unmarshal(out, &info); err != nil || info.Dir == "" {
		return "", fmt.Errorf("go mod download %s: %s", mod, out)
	}
	layerFile, err := os.CreateTemp(dir, ".gobase-*.tar")
	if err != nil {
		return "", err
	}
	defer os.Remove(layerFile.Name())
	tw := tar.NewWriter(layerFile)
	for _, d := range []string{"usr/", "usr/local/", "go/", "go/bin/", "go/src/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return "", err
		}
	}
	err = filepath.WalkDir(info.Dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(info.Dir, p)
		name := "usr/local/go"
		if rel != "." {
			name += "/" + filepath.ToSlash(rel)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: 0o755})
		case d.Type().IsRegular():
			// The module cache keeps files read-only and without exec
			// bits; the go command sets them on a toolchain it switches
			// to, as here: the commands in bin/ and pkg/tool/.
			mode := int64(0o644)
			if fi.Mode()&0o111 != 0 || strings.HasPrefix(rel, "bin/") || strings.HasPrefix(rel, "pkg/tool/") {
				mode = 0o755
			}
			if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: fi.Size()}); err != nil {
				return err
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(tw, f)
			return err
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if err := layerFile.Close(); err != nil {
		return "", err
	}
	l, err := tarball.LayerFromFile(layerFile.Name(), tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return "", err
	}
	env := []string{"GOLANG_VERSION=" + strings.TrimPrefix(version, "go"), "GOTOOLCHAIN=local", "GOPATH=/go",
		"PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if err := onDebian(debian, l, env, dir, "go", layoutDir); err != nil {
		return "", err
	}
	return "oci:" + layoutDir + ":go", nil
}
