package layers

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// touch marks a blob as used now: its modification time is its last use,
// which the cache's LRU limit and `packer cache prune` read.
func touch(p string) {
	now := time.Now()
	_ = os.Chtimes(p, now, now) // a cache that cannot record use still works
}

// UsedSuffix names the file beside a cached directory (an unpacked base,
// installed system packages) whose time is the directory's last use: the
// directory's own times belong to the image's root file system.
const UsedSuffix = ".used"

// MarkUsed records that the cached directory dir was used now. The
// record holds the directory's size, measured the first time (walking an
// unpacked base at every build would cost more than the record saves).
func MarkUsed(dir string) {
	p := dir + UsedSuffix
	if _, err := os.Stat(p); err != nil {
		if _, err := os.Stat(dir); err != nil {
			return // it was never made
		}
		_ = WriteFileAtomic(p, []byte(strconv.FormatInt(duSize(dir), 10)), 0o644)
	}
	touch(p)
}

// Entry kinds of the cache, as `packer cache ls` names them.
const (
	KindLayer    = "layer"    // blobs/sha256/DIGEST: a compressed layer
	KindRootfs   = "rootfs"   // rootfs/DIGEST: an unpacked base
	KindSystem   = "system"   // system/KEY: installed system packages
	KindTree     = "tree"     // trees/KEY: a cached step output, extracted to be hard-linked
	KindTool     = "tool"     // tool-cache/NAME: a package manager's downloads
	KindLeftover = "leftover" // tmp/*: what a killed build left
)

// CacheEntry is one removable thing in the cache.
type CacheEntry struct {
	Kind    string
	Path    string
	Size    int64
	LastUse time.Time
}

// cacheParts are the directories of the cache and what each holds: every
// entry directly inside is one CacheEntry.
var cacheParts = []struct{ dir, kind string }{
	{"blobs/sha256", KindLayer}, {"rootfs", KindRootfs}, {"system", KindSystem}, {"trees", KindTree}, {"tool-cache", KindTool}, {"tmp", KindLeftover},
}

// CacheEntries lists what the cache at dir holds, least recently used first.
func CacheEntries(dir string) ([]CacheEntry, error) {
	var out []CacheEntry
	for _, part := range cacheParts {
		ents, err := os.ReadDir(filepath.Join(dir, part.dir))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		for _, e := range ents {
			if (strings.HasPrefix(e.Name(), ".") && part.kind != KindLeftover) || strings.HasSuffix(e.Name(), UsedSuffix) {
				continue // a rename in progress; a use record
			}
			p := filepath.Join(dir, part.dir, e.Name())
			info, err := os.Lstat(p)
			if err != nil {
				continue
			}
			e := CacheEntry{Kind: part.kind, Path: p, LastUse: info.ModTime(), Size: -1}
			if used, err := os.Stat(p + UsedSuffix); err == nil {
				if used.ModTime().After(e.LastUse) {
					e.LastUse = used.ModTime()
				}
				if b, err := os.ReadFile(p + UsedSuffix); err == nil {
					if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
						e.Size = n
					}
				}
			}
			if e.Size < 0 {
				e.Size = duSize(p)
			}
			out = append(out, e)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].LastUse.Before(out[j].LastUse) })
	return out, nil
}

// duSize is the bytes a file or tree takes.
func duSize(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// Prune removes entries: those not used since before (when not zero), then
// the least recently used until the rest fit in keep bytes (when keep >
// 0). Entries used at or after protect are kept whatever their size (the
// build that is finishing). It returns what it removed. Step records whose
// layers are gone become misses; the records themselves are small and
// stay.
func Prune(dir string, before time.Time, keep int64, protect time.Time, remove func(string) error) ([]CacheEntry, error) {
	ents, err := CacheEntries(dir)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, e := range ents {
		total += e.Size
	}
	var removed []CacheEntry
	for _, e := range ents {
		if !protect.IsZero() && !e.LastUse.Before(protect) {
			continue
		}
		old := !before.IsZero() && e.LastUse.Before(before)
		over := keep > 0 && total > keep
		if !old && !over {
			continue
		}
		if err := remove(e.Path); err != nil {
			return removed, err
		}
		_ = os.Remove(e.Path + UsedSuffix) // absent for most entries
		total -= e.Size
		removed = append(removed, e)
	}
	return removed, nil
}
