// Package tmpdir makes packer's temporary files and directories with the
// owning process's pid in their names, so the next build can reclaim what
// a killed one (SIGKILL, a crash, a CI runner stopped) left: staging
// copies, sandboxes, secret mounts, half-written layers and layouts.
package tmpdir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Pattern is the os.MkdirTemp / os.CreateTemp pattern for prefix: the
// prefix, this process's pid, then the random part.
func Pattern(prefix string) string {
	return prefix + strconv.Itoa(os.Getpid()) + "-*"
}

// Mkdir is os.MkdirTemp(parent, Pattern(prefix)).
func Mkdir(parent, prefix string) (string, error) {
	return os.MkdirTemp(parent, Pattern(prefix))
}

// staleAfter is how old an entry without a pid in its name (written by an
// older packer) must be to be reclaimed.
const staleAfter = 24 * time.Hour

// Reclaim removes the entries of parent named prefix<pid>-… whose process
// is gone, and returns how many it removed. Entries of live processes
// (concurrent builds) are left alone; so is anything it cannot tell.
func Reclaim(parent, prefix string) int {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		name := e.Name()
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		switch {
		case err == nil && pid > 0:
			if pid == os.Getpid() || alive(pid) {
				continue
			}
		default:
			info, err := e.Info()
			if err != nil || time.Since(info.ModTime()) < staleAfter {
				continue
			}
		}
		if RemoveAll(filepath.Join(parent, name)) == nil {
			n++
		}
	}
	return n
}

// alive reports whether a process with pid exists (signal 0; EPERM means
// it exists under another user).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// RemoveAll is os.RemoveAll for trees holding read-only directories (an
// unpacked base image has some): they are made writable first.
func RemoveAll(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755) // best effort; RemoveAll reports what stays
		}
		return nil
	})
	return os.RemoveAll(dir)
}
