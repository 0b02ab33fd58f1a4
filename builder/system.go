package builder

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sys/unix"

	"github.com/packer-build/packer/internal/tmpdir"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/rootfs"
)

// systemPackages installs the plan's system packages for one platform
// inside the image, each set once per (base digest, package lists) and
// kept under the cache dir: the run packages in a directory that also
// becomes a layer of the image, the build packages in one over it that
// only the steps see. It returns the run layer (nil without run
// packages), whether it came from the cache, and the directories the
// steps run over (top first).
func (b *builder) systemPackages(ctx context.Context, img InImage, pl v1.Platform, base v1.Image) (*layers.Layer, bool, []string, error) {
	sys := b.plan.System
	d, err := base.Digest()
	if err != nil {
		return nil, false, nil, err
	}
	root, err := rootfs.Cached(ctx, base, img.CacheDir)
	if err != nil {
		return nil, false, nil, fmt.Errorf("unpacking the base image for its system packages: %w", err)
	}
	pm, err := packageManager(root)
	if err != nil {
		return nil, false, nil, err
	}
	var lowers []string
	var runLayer *layers.Layer
	cached := false
	if len(sys.Run) > 0 {
		key := layers.Key("system/v1", d.String(), "run", strings.Join(sys.Run, " "))
		dir, hit, err := b.installSet(ctx, img, base, pm, key, sys.Run, nil)
		if err != nil {
			return nil, false, nil, err
		}
		if ls, ok := b.opts.Store.Lookup(key); ok && hit && len(ls) == 1 {
			runLayer, cached = ls[0], true
		} else {
			if runLayer, err = upperLayer(ctx, b.opts.Store, dir, b.opts.Created, []string{root}); err != nil {
				return nil, false, nil, fmt.Errorf("writing the system packages' layer: %w", err)
			}
			if err := b.opts.Store.Record(key, []*layers.Layer{runLayer}); err != nil {
				return nil, false, nil, err
			}
		}
		lowers = []string{dir}
		b.systemKey = key
	}
	if len(sys.Build) > 0 {
		key := layers.Key("system/v1", d.String(), "run", strings.Join(sys.Run, " "), "build", strings.Join(sys.Build, " "))
		dir, _, err := b.installSet(ctx, img, base, pm, key, sys.Build, lowers)
		if err != nil {
			return nil, false, nil, err
		}
		lowers = append([]string{dir}, lowers...)
		b.systemKey = key
	}
	return runLayer, cached, lowers, nil
}

// packageManager is the base's: apt on Debian and Ubuntu, apk on Alpine.
func packageManager(root string) (string, error) {
	for _, c := range []struct{ path, pm string }{{"usr/bin/apt-get", "apt"}, {"sbin/apk", "apk"}, {"usr/sbin/apk", "apk"}, {"bin/apk", "apk"}} {
		if _, err := os.Lstat(filepath.Join(root, c.path)); err == nil {
			return c.pm, nil
		}
	}
	return "", fmt.Errorf("the base image has neither apt-get nor apk, so its system packages cannot be installed: choose a Debian, Ubuntu or Alpine base, or drop [system] and the modules that need it")
}

// installSet installs pkgs over the base (and lowers) into a directory
// under the cache, named by key, unless an earlier build did: hit says
// so. It is built beside its final name and renamed into place, so a
// half-done install is never used and concurrent builds share it.
func (b *builder) installSet(ctx context.Context, img InImage, base v1.Image, pm, key string, pkgs, lowers []string) (string, bool, error) {
	parent := filepath.Join(img.CacheDir, "system")
	final := filepath.Join(parent, key[:32])
	if st, err := os.Stat(final); err == nil && st.IsDir() {
		b.logf("system packages %s: cached", strings.Join(pkgs, " "))
		layers.MarkUsed(final)
		return final, true, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", false, err
	}
	tmpdir.Reclaim(parent, ".install-")
	tmp, err := tmpdir.Mkdir(parent, ".install-")
	if err != nil {
		return "", false, err
	}
	defer os.RemoveAll(tmp)
	upper := filepath.Join(tmp, "upper")
	if err := os.Mkdir(upper, 0o755); err != nil {
		return "", false, err
	}
	words := strings.Join(pkgs, " ") // plan.PackageName: no shell words
	var script string
	sb := sandbox{upper: upper, lowers: lowers}
	switch pm {
	case "apt":
		// Lists and downloads live in the tool cache, logs on a tmpfs:
		// none of them reach the layer.
		lists, archives := filepath.Join(img.CacheDir, "tool-cache", "apt", "lists"), filepath.Join(img.CacheDir, "tool-cache", "apt", "archives")
		for _, d := range []string{filepath.Join(lists, "partial"), filepath.Join(archives, "partial")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return "", false, err
			}
		}
		sb.tmpfs = []string{"/var/log", "/var/cache/apt"}
		sb.binds = [][2]string{{lists, "/var/lib/apt/lists"}, {archives, "/var/cache/apt/archives"}}
		script = "set -e\nexport DEBIAN_FRONTEND=noninteractive\n" +
			"apt-get -q -o APT::Sandbox::User=root update\n" +
			"apt-get -q -o APT::Sandbox::User=root -o Dpkg::Use-Pty=0 install -y --no-install-recommends " + words + "\n"
	case "apk":
		sb.tmpfs = []string{"/var/cache/apk"}
		script = "set -e\napk add --no-cache " + words + "\n"
	}
	b.logf("system packages %s: installing with %s inside the image", words, pm)
	start := time.Now()
	tail := &tailBuffer{max: 64 << 10}
	out := io.MultiWriter(b.log, tail)
	if err := img.sandbox(ctx, StepRun{Argv: []string{"sh", "-c", script}, Base: base, Output: out}, sb); err != nil {
		why := ""
		if c := cause(tail.buf); c != "" {
			why = "\ncause: " + c
		}
		return "", false, fmt.Errorf("installing system packages %s with %s failed: %w; check the package names for the base's distribution (its output is above)%s", words, pm, err, why)
	}
	b.logf("system packages %s: installed in %s", words, time.Since(start).Round(time.Millisecond))
	if err := os.Rename(upper, final); err != nil {
		if st, serr := os.Stat(final); serr == nil && st.IsDir() {
			return final, false, nil // a concurrent build won
		}
		return "", false, err
	}
	layers.MarkUsed(final)
	return final, false, nil
}

// notShipped are paths of an upper directory never put in a layer: what
// the sandbox creates to mount over, and ldconfig's cache of file times
// (different on every install; ldconfig rebuilds it).
var notShipped = map[string]bool{"etc/resolv.conf": true, "etc/packer-ca.crt": true, "var/cache/ldconfig/aux-cache": true}

// upperLayer turns an overlayfs upper directory into an OCI layer: its
// whiteouts (0/0 character devices) become .wh. files, opaque directories
// get .wh..wh..opq, times are clamped to created, and as a normal user
// (a user namespace mapped this user to root) this user's files are
// root's.
func upperLayer(ctx context.Context, store *layers.Store, dir string, created time.Time, lowers []string) (*layers.Layer, error) {
	// overlayfs marks every directory it creates opaque; only one that
	// hides something below needs the marker.
	below := func(rel string) bool {
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, rel)); err == nil {
				return true
			}
		}
		return false
	}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	me := os.Geteuid()
	return store.Write(ctx, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for _, p := range paths {
			rel, _ := filepath.Rel(dir, p)
			rel = filepath.ToSlash(rel)
			if notShipped[rel] || strings.HasSuffix(rel, "-old") && strings.HasPrefix(rel, "var/cache/debconf/") {
				continue
			}
			fi, err := os.Lstat(p)
			if err != nil {
				return err
			}
			st := fi.Sys().(*syscall.Stat_t)
			uid, gid := int(st.Uid), int(st.Gid)
			if me != 0 && uid == me {
				uid, gid = 0, 0
			}
			mtime := fi.ModTime()
			if mtime.After(created) {
				mtime = created
			}
			h := &tar.Header{Name: rel, Mode: layers.Mode(fi.Mode()), Uid: uid, Gid: gid, ModTime: mtime, Format: tar.FormatPAX}
			switch {
			case fi.Mode()&fs.ModeCharDevice != 0 && st.Rdev == 0:
				d, base := filepath.Split(rel)
				h = &tar.Header{Name: d + ".wh." + base, Typeflag: tar.TypeReg, Mode: 0o644, ModTime: created, Format: tar.FormatPAX}
				if err := tw.WriteHeader(h); err != nil {
					return err
				}
				continue
			case fi.IsDir():
				h.Typeflag, h.Name = tar.TypeDir, rel+"/"
			case fi.Mode()&fs.ModeSymlink != 0:
				h.Typeflag = tar.TypeSymlink
				if h.Linkname, err = os.Readlink(p); err != nil {
					return err
				}
			case fi.Mode().IsRegular():
				h.Typeflag, h.Size = tar.TypeReg, fi.Size()
			default:
				continue // devices, fifos and sockets a package made: not in a layer
			}
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if h.Typeflag == tar.TypeReg {
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				_, err = io.Copy(tw, f)
				f.Close()
				if err != nil {
					return err
				}
			}
			if fi.IsDir() && opaque(p) && below(rel) {
				if err := tw.WriteHeader(&tar.Header{Name: rel + "/.wh..wh..opq", Typeflag: tar.TypeReg, Mode: 0o644, ModTime: created, Format: tar.FormatPAX}); err != nil {
					return err
				}
			}
		}
		return tw.Close()
	})
}

// opaque reports whether overlayfs marked the directory opaque (as root:
// trusted.overlay.opaque; in a user namespace: user.overlay.opaque).
func opaque(p string) bool {
	buf := make([]byte, 8)
	for _, attr := range []string{"trusted.overlay.opaque", "user.overlay.opaque"} {
		if n, err := unix.Lgetxattr(p, attr, buf); err == nil && n > 0 && buf[0] == 'y' {
			return true
		}
	}
	return false
}
