// Package rootfs unpacks a base image's root file system, once per image
// digest, for build steps that run inside it (the in-image executor): the
// image's own Node.js, Python and system libraries instead of the host's.
//
// Layers are applied in order as a container runtime would: whiteouts
// (.wh.NAME) delete what lower layers put there, opaque markers
// (.wh..wh..opq) hide a directory's lower contents, hard links and
// symlinks are recreated, and no entry is written outside the target
// directory, whatever its symlinks say (absolute links resolve inside
// it). Device nodes and FIFOs are skipped: steps get /dev from the sandbox.
package rootfs

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
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/internal/tmpdir"
	"github.com/packer-build/packer/layers"
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// Cached returns img's root file system unpacked under cacheDir/rootfs,
// named by the image's digest, unpacking it when it is not there yet. It
// is unpacked beside its final name and renamed into place, so concurrent
// builds share one and none ever sees a partial one. Callers must not
// change it (the sandbox mounts it read-only).
func Cached(ctx context.Context, img v1.Image, cacheDir string) (string, error) {
	d, err := img.Digest()
	if err != nil {
		return "", err
	}
	parent := filepath.Join(cacheDir, "rootfs")
	final := filepath.Join(parent, d.Hex)
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		layers.MarkUsed(final)
		return final, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", fmt.Errorf("creating the root file system cache: %w", err)
	}
	tmpdir.Reclaim(parent, ".unpack-")
	tmp, err := tmpdir.Mkdir(parent, ".unpack-")
	if err != nil {
		return "", fmt.Errorf("creating the root file system cache: %w", err)
	}
	defer os.RemoveAll(tmp)
	if err := Unpack(ctx, img, tmp); err != nil {
		return "", err
	}
	// The temp dir is 0700; the unpacked root keeps the image's own mode.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		if st, serr := os.Stat(final); serr == nil && st.IsDir() {
			return final, nil // another build finished first
		}
		return "", fmt.Errorf("moving the unpacked root file system into place: %w", err)
	}
	layers.MarkUsed(final)
	return final, nil
}

// Unpack applies img's layers, bottom up, into dir.
func Unpack(ctx context.Context, img v1.Image, dir string) error {
	ls, err := img.Layers()
	if err != nil {
		return fmt.Errorf("reading the image's layers: %w", err)
	}
	for i, l := range ls {
		rc, err := layers.Uncompressed(l)
		if err != nil {
			return fmt.Errorf("reading layer %d: %w", i+1, err)
		}
		err = Apply(ctx, dir, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("unpacking layer %d of %d: %w", i+1, len(ls), err)
		}
	}
	return nil
}

// Apply applies one uncompressed layer tar stream onto dir.
func Apply(ctx context.Context, dir string, r io.Reader) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	ours := map[string]bool{} // what this layer wrote: opaque markers keep it
	var opaque []string
	err = layers.Entries(layers.ContextReader(ctx, r), func(name string, h *tar.Header, body io.Reader) error {
		if name == "" || name == "." {
			return nil
		}
		parentRel, base := path.Split(name)
		parent, err := securejoin.SecureJoin(dir, parentRel)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		switch {
		case base == opaqueMarker:
			opaque = append(opaque, path.Clean(parentRel))
			return nil
		case strings.HasPrefix(base, whiteoutPrefix):
			return os.RemoveAll(filepath.Join(parent, strings.TrimPrefix(base, whiteoutPrefix)))
		}
		target := filepath.Join(parent, base)
		ours[name] = true
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		mode := fs.FileMode(h.Mode).Perm()
		if h.Mode&0o4000 != 0 {
			mode |= fs.ModeSetuid
		}
		if h.Mode&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		if h.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if st, err := os.Lstat(target); err == nil && !st.IsDir() {
				if err := os.Remove(target); err != nil {
					return err
				}
			}
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if err := os.Chmod(target, mode); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := replace(target); err != nil {
				return err
			}
			f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
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
			if err := os.Chmod(target, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := replace(target); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src, err := securejoin.SecureJoin(dir, strings.TrimPrefix(path.Clean("/"+h.Linkname), "/"))
			if err != nil {
				return fmt.Errorf("%s: hard link to %s: %w", name, h.Linkname, err)
			}
			if err := replace(target); err != nil {
				return err
			}
			if err := os.Link(src, target); err != nil {
				return fmt.Errorf("%s: hard link to %s: %w", name, h.Linkname, err)
			}
		default:
			return nil // devices, FIFOs: the sandbox provides /dev
		}
		// Owners as the image has them, when this process may set them.
		if err := os.Lchown(target, h.Uid, h.Gid); err != nil && !errors.Is(err, fs.ErrPermission) {
			return err
		}
		if h.Typeflag != tar.TypeSymlink && h.Mode&0o7000 != 0 {
			return os.Chmod(target, mode) // chown clears setuid/setgid
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Opaque directories: what lower layers had there is gone.
	for _, d := range opaque {
		p, err := securejoin.SecureJoin(dir, d)
		if err != nil {
			return err
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return err
		}
		for _, e := range ents {
			if rel := path.Join(d, e.Name()); !ours[rel] && !underOurs(ours, rel) {
				if err := os.RemoveAll(filepath.Join(p, e.Name())); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// replace removes what stands at target (a file, a link, a directory of a
// lower layer) so a new entry can take its place.
func replace(target string) error {
	if err := os.RemoveAll(target); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// underOurs reports whether this layer wrote something below rel.
func underOurs(ours map[string]bool, rel string) bool {
	for p := range ours {
		if strings.HasPrefix(p, rel+"/") {
			return true
		}
	}
	return false
}
