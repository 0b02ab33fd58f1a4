package layers

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"time"
)

// ModTime is the constant modification time of every file in every layer,
// so layer digests do not move between commits or checkouts. It is a real
// date that zip-based tools accept (as buildpacks' lifecycle does).
var ModTime = time.Date(1980, time.January, 1, 0, 0, 1, 0, time.UTC)

// Spec says where a set of files lands in the image.
type Spec struct {
	// Dest is the absolute directory the files land in.
	Dest string
	// UID and GID own the files (not the parent directories of Dest,
	// which always belong to root).
	UID, GID int
}

// ParseOwner parses "UID:GID" (empty means 0:0).
func ParseOwner(s string) (uid, gid int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	u, g, ok := strings.Cut(s, ":")
	if !ok {
		g = u
	}
	if uid, err = strconv.Atoi(u); err != nil || uid < 0 {
		return 0, 0, fmt.Errorf("invalid owner %q: want numeric UID:GID", s)
	}
	if gid, err = strconv.Atoi(g); err != nil || gid < 0 {
		return 0, 0, fmt.Errorf("invalid owner %q: want numeric UID:GID", s)
	}
	return uid, gid, nil
}

// Mode normalises a file mode: 0755 for directories and anything with an
// execute bit, 0644 for other files; never the host's umask.
func Mode(m fs.FileMode) int64 {
	switch {
	case m&fs.ModeSymlink != 0:
		return 0o777
	case m.IsDir(), m&0o111 != 0:
		return 0o755
	default:
		return 0o644
	}
}

// WriteTar writes files as a deterministic tar stream: entries in the given
// order (Collect's), parents of Dest and of every entry written explicitly,
// constant mtimes, normalised modes, no user or group names, no xattrs.
func WriteTar(w io.Writer, files []File, spec Spec) error {
	tw := tar.NewWriter(w)
	dest := strings.TrimPrefix(path.Clean("/"+spec.Dest), "/")
	written := map[string]bool{}
	dir := func(name string, uid, gid int) error {
		if name == "" || name == "." || written[name] {
			return nil
		}
		written[name] = true
		return tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755,
			ModTime: ModTime, Uid: uid, Gid: gid, Format: tar.FormatPAX,
		})
	}
	// Parents of Dest belong to root.
	if dest != "" {
		parts := strings.Split(dest, "/")
		for i := range parts {
			if err := dir(strings.Join(parts[:i+1], "/"), 0, 0); err != nil {
				return err
			}
		}
	}
	buf := make([]byte, 256<<10)
	for _, f := range files {
		name := path.Join(dest, f.Rel)
		// Parents inside Dest that were excluded but hold included files.
		if parent := path.Dir(f.Rel); parent != "." {
			parts := strings.Split(parent, "/")
			for i := range parts {
				if err := dir(path.Join(dest, strings.Join(parts[:i+1], "/")), spec.UID, spec.GID); err != nil {
					return err
				}
			}
		}
		hdr := &tar.Header{
			Name: name, Mode: Mode(f.Mode), ModTime: ModTime,
			Uid: spec.UID, Gid: spec.GID, Format: tar.FormatPAX,
		}
		switch {
		case f.IsDir():
			if err := dir(name, spec.UID, spec.GID); err != nil {
				return err
			}
			continue
		case f.Link != "":
			hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, f.Link
		default:
			hdr.Typeflag, hdr.Size = tar.TypeReg, f.Size
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("writing %q: %w", f.Rel, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := copyFile(tw, f, buf); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyFile writes f's f.Size bytes to w; the holes of a sparse file are
// written as zeros without being read.
func copyFile(w io.Writer, f File, buf []byte) error {
	r, err := os.Open(f.Abs)
	if err != nil {
		return unreadable(f.Rel, err)
	}
	defer r.Close()
	var src io.Reader = io.LimitReader(r, f.Size)
	if regions, sparse := dataRegions(r, f.Size); sparse {
		src = &sparseReader{f: r, regions: regions, size: f.Size}
	}
	n, err := io.CopyBuffer(w, src, buf)
	if err != nil {
		return fmt.Errorf("reading %q: %w", f.Rel, err)
	}
	if n != f.Size {
		return fmt.Errorf("%q changed size while packer was reading it (%d of %d bytes); retry when nothing is writing to the context", f.Rel, n, f.Size)
	}
	return nil
}

// Entry is a synthetic file written by packer itself (e.g. /etc/passwd).
type Entry struct {
	// Name is the absolute path in the image.
	Name     string
	Mode     int64
	UID, GID int
	// Dir marks a directory; Data is ignored.
	Dir  bool
	Data []byte
}

// WriteEntries writes synthetic entries, in the given order, with the same
// normalisation as WriteTar (modes are taken as given).
func WriteEntries(w io.Writer, entries []Entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		hdr := &tar.Header{
			Name: strings.TrimPrefix(path.Clean(e.Name), "/"), Mode: e.Mode, ModTime: ModTime,
			Uid: e.UID, Gid: e.GID, Format: tar.FormatPAX,
		}
		if e.Dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.Data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !e.Dir {
			if _, err := tw.Write(e.Data); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}
