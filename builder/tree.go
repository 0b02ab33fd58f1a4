package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/packer-build/packer/internal/tmpdir"
	"github.com/packer-build/packer/layers"
)

// A skipped step's output that a later step needs (NestJS's dev
// dependencies for `nest build`: ~20,000 files) used to be extracted from
// its compressed layer into the staging copy on every rebuild: 6–15 s of
// file creation on these machines for 2 s of build. Now the layer is
// extracted once into the cache (CACHE/trees/KEY/tree) and each build
// gets hard links to it: 0.3 s for the same tree. Measured in
// BENCHMARKS.md; reflinks would be safer still but ext4 has none, and an
// overlay mount would serve only the in-image executor.
//
// Hard links share the cache's inodes, so a step writing into a file in
// place would change the cache. Guarded three ways: the tree's stamp (a
// hash over every file's path, size, mode and modification time, taken
// when it was extracted) is checked as the links are made, so a tree a
// killed build left changed is extracted again; after each step, every
// linked file is compared with what was linked, and a changed tree is
// discarded (the layer it came from is unaffected: the next build
// extracts it again); a step that replaces or deletes files (rename,
// unlink: what package managers and bundlers do) changes only its own
// links.

// linkedTree is a cached tree hard-linked into a staging copy.
type linkedTree struct {
	dir   string               // CACHE/trees/KEY
	files map[string]fileStamp // relative path → what was linked
}

type fileStamp struct {
	size  int64
	mtime int64
	mode  fs.FileMode
}

func stampOf(info fs.FileInfo) fileStamp {
	return fileStamp{size: info.Size(), mtime: info.ModTime().UnixNano(), mode: info.Mode()}
}

// errNoLinks means the staging copy and the cache are on different file
// systems (a tmpfs /tmp): the caller extracts instead.
var errNoLinks = errors.New("hard links across file systems")

// treeKey names the extracted copy of layer digest's entries under dest.
func treeKey(digest, dest string) string {
	sum := sha256.Sum256([]byte("tree-v1\x00" + digest + "\x00" + dest))
	return hex.EncodeToString(sum[:16])
}

// cachedTree returns the extracted tree of l's entries under dest,
// extracting it when the cache has none (or a changed one).
func (b *builder) cachedTree(ctx context.Context, l *layers.Layer, dest string) (string, error) {
	d, err := l.Digest()
	if err != nil {
		return "", err
	}
	parent := filepath.Join(b.opts.Store.Dir, "trees")
	final := filepath.Join(parent, treeKey(d.String(), dest))
	if st, err := os.Stat(filepath.Join(final, "tree")); err == nil && st.IsDir() {
		layers.MarkUsed(final)
		return final, nil
	}
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	tmpdir.Reclaim(parent, ".extract-")
	tmpdir.Reclaim(parent, ".discard-")
	tmp, err := tmpdir.Mkdir(parent, ".extract-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	rc, err := l.Uncompressed()
	if err != nil {
		return "", err
	}
	err = layers.Extract(ctx, rc, dest, filepath.Join(tmp, "tree"))
	rc.Close()
	if err != nil {
		return "", err
	}
	sum, _, err := stampTree(filepath.Join(tmp, "tree"))
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, "stamp"), []byte(sum), 0o644); err != nil {
		return "", err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		if st, serr := os.Stat(filepath.Join(final, "tree")); serr == nil && st.IsDir() {
			return final, nil // a concurrent build extracted it first
		}
		return "", err
	}
	layers.MarkUsed(final)
	return final, nil
}

// seedTree makes a step's output, just written as layer l, the cache's
// extracted copy of l: its files hard-linked from the staging copy, so
// the next build that needs the output links it instead of extracting the
// layer (NestJS's dev dependencies: ~10 s on the first rebuild after a
// cold build). The staging copy's later steps are checked for writes into
// it as for a restored tree. Best effort: on any failure there is no
// copy, and the next build extracts the layer as before.
func (b *builder) seedTree(step, staging string, l *layers.Layer, dest string, files []layers.File) {
	start := time.Now()
	parent := filepath.Join(b.opts.Store.Dir, "trees")
	final := filepath.Join(parent, treeKey(l.Desc.Digest.String(), dest))
	if _, err := os.Stat(final); err == nil {
		return
	}
	if os.MkdirAll(parent, 0o755) != nil {
		return
	}
	tmp, err := tmpdir.Mkdir(parent, ".extract-")
	if err != nil {
		return
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "tree")
	if os.Mkdir(root, 0o755) != nil {
		return
	}
	for _, f := range files {
		target := filepath.Join(root, filepath.FromSlash(f.Rel))
		if !f.IsDir() && os.MkdirAll(filepath.Dir(target), 0o755) != nil {
			return
		}
		switch {
		case f.IsDir():
			err = os.MkdirAll(target, 0o755)
		case f.Mode&fs.ModeSymlink != 0:
			err = os.Symlink(f.Link, target)
		case f.Mode.IsRegular():
			err = os.Link(f.Abs, target)
		}
		if err != nil {
			return // another file system (EXDEV), or anything else
		}
	}
	sum, stamps, err := stampTree(root)
	if err != nil || os.WriteFile(filepath.Join(tmp, "stamp"), []byte(sum), 0o644) != nil || os.Chmod(tmp, 0o755) != nil {
		return
	}
	if os.Rename(tmp, final) != nil {
		return // a concurrent build made it first
	}
	layers.MarkUsed(final)
	b.linked[staging] = append(b.linked[staging], &linkedTree{dir: final, files: stamps})
	b.logf("step %s: its output kept as the cache's extracted copy for later builds (%d files linked in %s)", step, len(stamps), time.Since(start).Round(time.Millisecond))
}

// stampTree hashes every regular file's path, size, mode and time, in
// walk (lexical) order, and returns the stamps too.
func stampTree(root string) (string, map[string]fileStamp, error) {
	h := sha256.New()
	files := map[string]fileStamp{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		s := stampOf(info)
		files[rel] = s
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%o\n", rel, s.size, s.mtime, s.mode)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), files, err
}

// linkTree puts the tree's files into into: directories made, regular
// files hard-linked, symlinks re-created. It fails with errNoLinks when
// into is on another file system, and when the tree no longer matches
// its stamp (the caller discards it and extracts again).
func linkTree(tree, into string) (*linkedTree, error) {
	root := filepath.Join(tree, "tree")
	want, err := os.ReadFile(filepath.Join(tree, "stamp"))
	if err != nil {
		return nil, err
	}
	lt := &linkedTree{dir: tree, files: map[string]fileStamp{}}
	h := sha256.New()
	var files []string
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		target := filepath.Join(into, rel)
		switch {
		case d.IsDir():
			if rel == "." {
				return os.MkdirAll(into, 0o755)
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			if err := os.Mkdir(target, info.Mode().Perm()); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); !errors.Is(err, fs.ErrExist) {
				return err
			}
			_ = os.Remove(target)
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			info, err := d.Info()
			if err != nil {
				return err
			}
			s := stampOf(info)
			lt.files[rel] = s
			fmt.Fprintf(h, "%s\x00%d\x00%d\x00%o\n", rel, s.size, s.mtime, s.mode)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != strings.TrimSpace(string(want)) {
		return nil, errTreeChanged
	}
	// Made after the walk, one at a time: four goroutines were no faster
	// (19,338 files: 0.83–0.91 s either way; the journal, not the walk,
	// is the cost — the walk with its lstats takes 0.04 s).
	for _, rel := range files {
		src, target := filepath.Join(root, rel), filepath.Join(into, rel)
		err := os.Link(src, target)
		if errors.Is(err, fs.ErrExist) { // the context had a file there
			_ = os.Remove(target)
			err = os.Link(src, target)
		}
		if errors.Is(err, syscall.EXDEV) {
			return nil, errNoLinks
		}
		if err != nil {
			return nil, err
		}
	}
	return lt, nil
}

var errTreeChanged = errors.New("the cached tree no longer matches its stamp")

// changed returns the first linked file whose size, mode or time is no
// longer what was linked ("" when none): a step wrote into the cache.
func (lt *linkedTree) changed() string {
	root := filepath.Join(lt.dir, "tree")
	for rel, s := range lt.files {
		info, err := os.Lstat(filepath.Join(root, rel))
		if err != nil || stampOf(info) != s {
			return rel
		}
	}
	return ""
}

// discardTree removes a cached tree (renamed aside first, so no build
// links a half-removed one).
func discardTree(dir string) {
	aside := filepath.Join(filepath.Dir(dir), fmt.Sprintf(".discard-%d-%s", os.Getpid(), filepath.Base(dir)))
	if os.Rename(dir, aside) == nil {
		_ = os.RemoveAll(aside)
	}
	_ = os.Remove(dir + layers.UsedSuffix)
}
