package layers

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// File is one entry of a layer source.
type File struct {
	// Rel is the slash-separated path relative to the source root.
	Rel  string
	Mode fs.FileMode
	Size int64
	// Link is the target of a symlink, made relative when it pointed
	// inside the context by an absolute path.
	Link string
	// Abs is the path on disk to read content from.
	Abs string
}

// IsDir reports whether the entry is a directory.
func (f File) IsDir() bool { return f.Mode.IsDir() }

// ErrEscapingSymlink is returned for a symlink that points outside the
// build context.
var ErrEscapingSymlink = errors.New("symlink points outside the build context")

// Collect walks root and returns the entries selected by include (paths
// relative to root, files or directories; empty means everything) that
// ig does not exclude, in a deterministic order with directories before
// their contents. Sockets, devices and pipes are skipped. Unreadable files
// and symlinks escaping root are errors naming the path and the fix.
func Collect(root string, ig *Ignore, include []string) ([]File, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if len(include) == 0 {
		include = []string{"."}
	}
	seen := map[string]bool{}
	var out []File
	// Hard links: how many of each inode's links the walk met, and the
	// first one's path.
	type inode struct {
		nlink, met int
		rel        string
	}
	inodes := map[[2]uint64]*inode{}
	var special []string
	for _, inc := range include {
		inc = path.Clean(filepath.ToSlash(inc))
		start := filepath.Join(root, filepath.FromSlash(inc))
		if _, err := os.Lstat(start); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("%q does not exist in %s", inc, root)
			}
			return nil, fmt.Errorf("reading %q: %w", inc, err)
		}
		err := filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
			rel, rerr := filepath.Rel(root, p)
			if rerr != nil {
				return rerr
			}
			rel = filepath.ToSlash(rel)
			if err != nil {
				return unreadable(rel, err)
			}
			if rel == "." {
				return nil
			}
			excluded, skip, err := ig.Excluded(rel, d.IsDir())
			if err != nil {
				return err
			}
			if excluded {
				if skip {
					return filepath.SkipDir
				}
				return nil
			}
			if seen[rel] {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return unreadable(rel, err)
			}
			f := File{Rel: rel, Mode: info.Mode(), Abs: p}
			switch {
			case info.Mode().IsRegular():
				if secret, err := ig.ExcludedContent(rel, p); err != nil {
					return err
				} else if secret {
					return nil
				}
				f.Size = info.Size()
				r, err := os.Open(p)
				if err != nil {
					return unreadable(rel, err)
				}
				r.Close()
				if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
					k := [2]uint64{uint64(st.Dev), st.Ino}
					if inodes[k] == nil {
						inodes[k] = &inode{nlink: int(st.Nlink), rel: rel}
					}
					inodes[k].met++
				}
			case info.IsDir():
				// Checked by WalkDir when it reads the directory.
			case info.Mode()&fs.ModeSymlink != 0:
				target, err := os.Readlink(p)
				if err != nil {
					return unreadable(rel, err)
				}
				link, err := insideLink(root, rel, target)
				if err != nil {
					return err
				}
				f.Link = link
				if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
					ig.note(rel, fmt.Sprintf("%s is a symlink to %s, which does not exist: it ships dangling (remove it or add it to .dockerignore)", rel, target))
				}
			default:
				special = append(special, rel) // sockets, devices, pipes
				return nil
			}
			seen[rel] = true
			out = append(out, f)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, in := range inodes {
		if in.met < in.nlink {
			ig.note(in.rel, fmt.Sprintf("%s is a hard link whose other links are outside the context (or left out): its content ships as a regular file", in.rel))
		}
	}
	if len(special) > 0 {
		sort.Strings(special)
		ig.note(special[0], "left out special files (sockets, devices, pipes), which a layer cannot hold: "+strings.Join(special, ", "))
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Rel < out[j].Rel })
	return out, nil
}

func unreadable(rel string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return fmt.Errorf("cannot read %q in the build context: permission denied; make it readable or add it to .dockerignore", rel)
	}
	return fmt.Errorf("reading %q in the build context: %w", rel, err)
}

// insideLink checks that a symlink at rel (relative to root) with the given
// target stays inside root and returns the target to store.
func insideLink(root, rel, target string) (string, error) {
	var resolved string
	if filepath.IsAbs(target) {
		r, err := filepath.Rel(root, target)
		if err != nil || r == ".." || strings.HasPrefix(r, "../") {
			return "", fmt.Errorf("%w: %q -> %q; replace it with the file it points to or add it to .dockerignore", ErrEscapingSymlink, rel, target)
		}
		// Rewrite to a relative link so it works where the context lands.
		t, err := filepath.Rel(filepath.Dir(filepath.Join(root, rel)), target)
		if err != nil {
			return "", err
		}
		return filepath.ToSlash(t), nil
	}
	resolved = path.Join(path.Dir(rel), filepath.ToSlash(target))
	if resolved == ".." || strings.HasPrefix(resolved, "../") {
		return "", fmt.Errorf("%w: %q -> %q; replace it with the file it points to or add it to .dockerignore", ErrEscapingSymlink, rel, target)
	}
	return filepath.ToSlash(target), nil
}

// CopyFiles copies entries (from Collect) under dest, keeping symlinks as
// symlinks and execute bits; nothing is written outside dest.
func CopyFiles(ctx context.Context, dest string, files []File) error {
	buf := make([]byte, 256<<10)
	for _, f := range files {
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		target := filepath.Join(dest, filepath.FromSlash(f.Rel))
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		switch {
		case f.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case f.Link != "":
			if err := os.Symlink(filepath.FromSlash(f.Link), target); err != nil {
				return err
			}
		default:
			w, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(Mode(f.Mode)))
			if err != nil {
				return err
			}
			if err := copySparse(ctx, w, f, buf); err != nil {
				w.Close()
				return err
			}
			if err := w.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Extract writes the entries of a tar stream that lie under prefix (a
// slash path without leading slash; "" for all) into dir, with the prefix
// removed. Paths that would leave dir are refused.
func Extract(ctx context.Context, r io.Reader, prefix, dir string) error {
	return Entries(ContextReader(ctx, r), func(name string, h *tar.Header, body io.Reader) error {
		rel := name
		if prefix != "" {
			if name == prefix {
				return nil
			}
			if !strings.HasPrefix(name, prefix+"/") {
				return nil
			}
			rel = strings.TrimPrefix(name, prefix+"/")
		}
		target := filepath.Join(dir, filepath.FromSlash(rel))
		if !strings.HasPrefix(target, filepath.Clean(dir)+string(filepath.Separator)) {
			return fmt.Errorf("layer entry %q leaves the target directory", h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			os.Remove(target)
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, fs.FileMode(h.Mode&0o777|0o200))
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, body); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
		}
		return nil
	})
}

// Entries calls fn for each entry of the uncompressed layer tar r, with
// the entry's name cleaned and made relative ("./a//b/" → "a/b") and a
// reader of its contents; fn's error stops the walk.
func Entries(r io.Reader, fn func(name string, h *tar.Header, body io.Reader) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), h, tr); err != nil {
			return err
		}
	}
}

// copySparse copies f into w, keeping a sparse file's holes as holes (the
// staging copy of a 5 GiB disk image with little data takes no time and
// no disk).
func copySparse(ctx context.Context, w *os.File, f File, buf []byte) error {
	r, err := os.Open(f.Abs)
	if err != nil {
		return unreadable(f.Rel, err)
	}
	regions, sparse := dataRegions(r, f.Size)
	r.Close()
	if !sparse {
		return copyFile(ContextWriter(ctx, w), f, buf)
	}
	for _, reg := range regions {
		if _, err := w.Seek(reg.off, io.SeekStart); err != nil {
			return err
		}
		sub := f
		sub.Size = reg.n
		if err := copyRange(ContextWriter(ctx, w), sub, reg.off, buf); err != nil {
			return err
		}
	}
	return w.Truncate(f.Size)
}
