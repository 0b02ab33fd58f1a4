package layers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"

	"github.com/packer-build/packer/internal/tmpdir"
)

// GzipLevel is the fixed compression level. Layer digests depend on the
// compressor's library, version, level and block size, so all of them are
// part of every cache key (see Compressor).
const GzipLevel = 6

// GzipBlock is the size of the blocks compressed in parallel (pgzip): each
// block is compressed with the previous one's tail as its dictionary, so
// the output depends on the block size only, never on how many cores run
// (tested: the same digest with GOMAXPROCS=1 and 2).
const GzipBlock = 1 << 20

var compressorOnce sync.Once
var compressorID string

// Compressions a Store writes layers with.
const (
	Gzip = "gzip"
	// Zstd layers (application/vnd.oci.image.layer.v1.tar+zstd) are read
	// by containerd ≥ 1.5, podman and Docker ≥ 23.
	Zstd = "zstd"
)

// zstdID identifies the zstd encoder: library version, level, window and
// the concurrent-blocks mode (jobs of four windows, independent of the
// number of cores, so the bytes are the same on any machine).
func zstdID() string {
	v := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/klauspost/compress" {
				v = d.Version
			}
		}
	}
	return fmt.Sprintf("klauspost/compress/zstd@%s level default window %d concurrent-blocks", v, zstdWindow)
}

const zstdWindow = 8 << 20

// Compressor identifies the compressor of the store's layers; it is part
// of every layer and step cache key.
func (s *Store) Compressor() string {
	if s != nil && s.Compression == Zstd {
		return zstdID()
	}
	return Compressor()
}

// Compressor identifies the gzip compressor (library, version, level); it
// is part of every layer cache key of a gzip store.
func Compressor() string {
	compressorOnce.Do(func() {
		v, pv := "unknown", "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, d := range bi.Deps {
				switch d.Path {
				case "github.com/klauspost/compress":
					v = d.Version
				case "github.com/klauspost/pgzip":
					pv = d.Version
				}
			}
		}
		compressorID = fmt.Sprintf("klauspost/pgzip@%s (compress@%s) level %d block %d", pv, v, GzipLevel, GzipBlock)
	})
	return compressorID
}

// Layer is a gzip-compressed OCI layer stored as a blob file in a Store. It
// implements v1.Layer without holding the layer in memory.
type Layer struct {
	Desc Descriptor
	path string
}

// Descriptor records what is known about a stored layer.
type Descriptor struct {
	Digest v1.Hash `json:"digest"`
	DiffID v1.Hash `json:"diffID"`
	Size   int64   `json:"size"`
	// MediaType is set for zstd layers; empty means gzip.
	MediaType types.MediaType `json:"mediaType,omitempty"`
}

var _ v1.Layer = (*Layer)(nil)

func (l *Layer) Digest() (v1.Hash, error) { return l.Desc.Digest, nil }
func (l *Layer) DiffID() (v1.Hash, error) { return l.Desc.DiffID, nil }
func (l *Layer) Size() (int64, error)     { return l.Desc.Size, nil }
func (l *Layer) MediaType() (types.MediaType, error) {
	if l.Desc.MediaType != "" {
		return l.Desc.MediaType, nil
	}
	return types.OCILayer, nil
}
func (l *Layer) Compressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *Layer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	if l.Desc.MediaType == types.OCILayerZStd {
		zr, err := zstd.NewReader(f)
		if err != nil {
			f.Close()
			return nil, err
		}
		return &readCloser{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &readCloser{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
}

// Uncompressed opens any layer's tar. For a layer from elsewhere (a
// registry, a layout) it reads the compressed stream, which the layer
// verifies against its digest, through klauspost's gzip or zstd reader,
// sniffed by their magic bytes: go-containerregistry's own Uncompressed
// uses the standard library's gzip, which took 1.23 s for the 280 MB
// Debian test base against 0.93 s here. Anything else is the layer's own
// Uncompressed.
func Uncompressed(l v1.Layer) (io.ReadCloser, error) {
	if own, ok := l.(*Layer); ok {
		return own.Uncompressed()
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(rc, 64<<10)
	magic, _ := br.Peek(4) // a short or failed peek is neither format
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &readCloser{Reader: zr, close: func() error { zr.Close(); return rc.Close() }}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, err
		}
		return &readCloser{Reader: zr, close: func() error { zr.Close(); return rc.Close() }}, nil
	}
	if err := rc.Close(); err != nil {
		return nil, err
	}
	return l.Uncompressed()
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

// Store is a content-addressed blob store plus a key → layers index, under
// one directory (the layer cache). Writes are atomic (temp file + rename),
// so concurrent builds can share a Store.
type Store struct {
	Dir string
	// Compression is Gzip (the default, "") or Zstd.
	Compression string
	// Fetch, when set, brings a blob the store lacks from elsewhere (a
	// registry cache) into w; Open then keeps it.
	Fetch func(ctx context.Context, d Descriptor, w io.Writer) error

	// Tee, when set, also reads the tar stream of every layer Write makes,
	// on a goroutine of its own while the layer is compressed (the SBOM
	// scanner does, so a new layer is not decompressed again to be
	// scanned). What it leaves unread is drained. The function it returns,
	// if any, is called with the layer's descriptor once the layer is
	// stored, and not when the write fails.
	Tee func(r io.Reader) func(Descriptor)

	mu       sync.Mutex
	used     map[string][]Descriptor
	usedMeta map[string][]byte
}

// UsedMeta returns the metadata records (base facts, base SBOM scans) this
// process read or wrote.
func (s *Store) UsedMeta() map[string][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]byte, len(s.usedMeta))
	for k, v := range s.usedMeta {
		out[k] = v
	}
	return out
}

func (s *Store) noteMeta(key string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.usedMeta == nil {
		s.usedMeta = map[string][]byte{}
	}
	s.usedMeta[key] = b
}

// AdoptMeta writes a metadata record unless the store has one under key.
func (s *Store) AdoptMeta(key string, b []byte) error {
	if _, ok := s.ReadMeta(key); ok {
		return nil
	}
	return WriteFileAtomic(filepath.Join(s.Dir, "keys", key+".meta"), b, 0o644)
}

// Used returns the step and layer records this process looked up or wrote:
// what a registry cache of this build holds.
func (s *Store) Used() map[string][]Descriptor {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]Descriptor, len(s.used))
	for k, v := range s.used {
		out[k] = v
	}
	return out
}

func (s *Store) noteUsed(key string, ds []Descriptor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used == nil {
		s.used = map[string][]Descriptor{}
	}
	s.used[key] = ds
}

// HasKey reports whether the store has a record under key.
func (s *Store) HasKey(key string) bool {
	_, err := os.Stat(filepath.Join(s.Dir, "keys", key+".json"))
	return err == nil
}

// Adopt records ds under key unless the store has a record there already:
// entries of a registry cache, whose blobs Fetch brings when a build
// looks them up.
func (s *Store) Adopt(key string, ds []Descriptor) error {
	if s.HasKey(key) {
		return nil
	}
	b, err := json.Marshal(ds)
	if err != nil {
		return err
	}
	return WriteFileAtomic(filepath.Join(s.Dir, "keys", key+".json"), b, 0o644)
}

// fetch brings blob d from s.Fetch into the store, checking its digest.
func (s *Store) fetch(d Descriptor) error {
	tmp, err := os.CreateTemp(filepath.Join(s.Dir, "tmp"), tmpdir.Pattern("fetch-"))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	err = s.Fetch(context.Background(), d, io.MultiWriter(tmp, h))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := hashOf(h); got != d.Digest {
		return fmt.Errorf("fetched blob %s has digest %s", d.Digest, got)
	}
	return os.Rename(tmp.Name(), s.blobPath(d.Digest))
}

// NewStore opens (creating) a store in dir.
func NewStore(dir string) (*Store, error) {
	for _, d := range []string{"blobs/sha256", "keys", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("creating cache directory: %w; pass --cache-dir with a writable directory", err)
		}
	}
	tmpdir.Reclaim(filepath.Join(dir, "tmp"), "layer-") // half-written layers of killed builds
	return &Store{Dir: dir}, nil
}

func (s *Store) blobPath(h v1.Hash) string {
	return filepath.Join(s.Dir, "blobs", h.Algorithm, h.Hex)
}

// Open returns the stored layer with descriptor d, or an error wrapping
// fs.ErrNotExist when its blob is gone.
func (s *Store) Open(d Descriptor) (*Layer, error) {
	p := s.blobPath(d.Digest)
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) && s.Fetch != nil {
		if ferr := s.fetch(d); ferr == nil {
			st, err = os.Stat(p)
		}
	}
	if err != nil {
		return nil, err
	}
	if st.Size() != d.Size {
		return nil, fmt.Errorf("cached blob %s has size %d, want %d: %w", d.Digest, st.Size(), d.Size, fs.ErrNotExist)
	}
	touch(p)
	return &Layer{Desc: d, path: p}, nil
}

// Write streams a tar produced by write through gzip into the store in one
// pass, computing the diffID and the compressed digest on the way.
func (s *Store) Write(ctx context.Context, write func(io.Writer) error) (*Layer, error) {
	tmp, err := os.CreateTemp(filepath.Join(s.Dir, "tmp"), tmpdir.Pattern("layer-"))
	if err != nil {
		return nil, fmt.Errorf("writing layer to cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()

	digest := sha256.New()
	counter := &countWriter{}
	zw, err := s.compressor(io.MultiWriter(tmp, digest, counter))
	if err != nil {
		return nil, err
	}
	tee, teeDone := s.startTee()
	stored := false
	defer func() {
		if !stored {
			teeDone(errors.New("the layer was not written"))
		}
	}()
	// Two stages on two goroutines: tar + diffID here, gzip + digest +
	// file write in pipeline(); chunks are handed over through a small
	// bounded queue, so memory stays constant whatever the layer size.
	diff := sha256.New()
	if err := pipeline(zw, func(w io.Writer) error { return write(ContextWriter(ctx, io.MultiWriter(w, diff, tee))) }); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing layer: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing layer to cache: %w", err)
	}
	d := Descriptor{Digest: hashOf(digest), DiffID: hashOf(diff), Size: counter.n}
	if s.Compression == Zstd {
		d.MediaType = types.OCILayerZStd
	}
	if err := os.Rename(tmp.Name(), s.blobPath(d.Digest)); err != nil {
		return nil, fmt.Errorf("writing layer to cache: %w", err)
	}
	stored = true
	if f := teeDone(nil); f != nil {
		f(d)
	}
	return &Layer{Desc: d, path: s.blobPath(d.Digest)}, nil
}

// TeeReader returns r with what is read from it also going to s.Tee
// (r itself without a Tee), and a function to call once r is read to its
// end (err nil) or abandoned: it returns the Tee's callback for the layer,
// or nil. Reading a base layer's tar once then also scans it.
func (s *Store) TeeReader(r io.Reader) (io.Reader, func(err error) func(Descriptor)) {
	if s.Tee == nil {
		return r, func(error) func(Descriptor) { return nil }
	}
	w, done := s.startTee()
	return io.TeeReader(r, w), done
}

// startTee starts s.Tee on a pipe and returns the pipe's writer end (or
// io.Discard without a Tee) and a function that closes it with err (nil
// at the end of the tar), waits for the Tee and returns its callback.
func (s *Store) startTee() (io.Writer, func(err error) func(Descriptor)) {
	if s.Tee == nil {
		return io.Discard, func(error) func(Descriptor) { return nil }
	}
	pr, pw := io.Pipe()
	ch := make(chan func(Descriptor), 1)
	go func() {
		f := s.Tee(pr)
		_, _ = io.Copy(io.Discard, pr) // a reader that stopped early (the tar's padding, its own error)
		ch <- f
	}()
	return pw, func(err error) func(Descriptor) {
		pw.CloseWithError(err) // nil: the reader sees EOF
		f := <-ch
		if err != nil {
			return nil
		}
		return f
	}
}

// ReadMeta returns a small metadata record stored under key.
func (s *Store) ReadMeta(key string) ([]byte, bool) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "keys", key+".meta"))
	if err == nil {
		s.noteMeta(key, b)
	}
	return b, err == nil
}

// WriteMeta stores a small metadata record under key, atomically.
func (s *Store) WriteMeta(key string, b []byte) error {
	s.noteMeta(key, b)
	return WriteFileAtomic(filepath.Join(s.Dir, "keys", key+".meta"), b, 0o644)
}

// Remove deletes a blob (e.g. one found to hold a secret); step entries
// that point at it become misses.
func (s *Store) Remove(h v1.Hash) error {
	err := os.Remove(s.blobPath(h))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Lookup returns the layers stored under key, or ok=false on a miss
// (including when a blob has since been removed).
func (s *Store) Lookup(key string) (ls []*Layer, ok bool) {
	b, err := os.ReadFile(filepath.Join(s.Dir, "keys", key+".json"))
	if err != nil {
		return nil, false
	}
	var ds []Descriptor
	if err := json.Unmarshal(b, &ds); err != nil {
		return nil, false
	}
	for _, d := range ds {
		l, err := s.Open(d)
		if err != nil {
			return nil, false
		}
		ls = append(ls, l)
	}
	s.noteUsed(key, ds)
	return ls, true
}

// Record stores layers under key, atomically.
func (s *Store) Record(key string, ls []*Layer) error {
	ds := make([]Descriptor, len(ls))
	for i, l := range ls {
		ds[i] = l.Desc
	}
	b, err := json.Marshal(ds)
	if err != nil {
		return err
	}
	s.noteUsed(key, ds)
	return WriteFileAtomic(filepath.Join(s.Dir, "keys", key+".json"), b, 0o644)
}

// WriteFileAtomic writes data to a temp file next to name and renames it
// into place, so readers never see a partial file.
func WriteFileAtomic(name string, data []byte, perm fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name)+"-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// Key hashes parts into a cache key. Parts are length-prefixed so that
// ("ab","c") and ("a","bc") differ.
func Key(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:%s\n", len(p), p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// HashFiles returns a digest over the entries' paths, modes, link targets
// and contents: a cache key for a layer built from them.
func HashFiles(ctx context.Context, files []File) (string, error) {
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for _, f := range files {
		fmt.Fprintf(h, "%q %o %q %d\n", f.Rel, Mode(f.Mode)|int64(f.Mode.Type()), f.Link, f.Size)
		if !f.Mode.IsRegular() {
			continue
		}
		if err := hashContent(ContextWriter(ctx, h), f, buf); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashContent writes what identifies f's content to w: its bytes, or for
// a sparse file its data regions and their bytes (the holes are zeros:
// hashing gigabytes of them would only cost time). The same bytes stored
// densely hash differently, which costs a cache miss, never a wrong hit.
func hashContent(w io.Writer, f File, buf []byte) error {
	r, err := os.Open(f.Abs)
	if err != nil {
		return unreadable(f.Rel, err)
	}
	regions, sparse := dataRegions(r, f.Size)
	r.Close()
	if !sparse {
		return copyFile(w, f, buf)
	}
	fmt.Fprintf(w, "sparse %v\n", regions)
	for _, reg := range regions {
		sub := f
		sub.Size = reg.n
		if err := copyRange(w, sub, reg.off, buf); err != nil {
			return err
		}
	}
	return nil
}

// copyRange writes f.Size bytes of f from off to w.
func copyRange(w io.Writer, f File, off int64, buf []byte) error {
	r, err := os.Open(f.Abs)
	if err != nil {
		return unreadable(f.Rel, err)
	}
	defer r.Close()
	n, err := io.CopyBuffer(w, io.NewSectionReader(r, off, f.Size), buf)
	if err != nil {
		return fmt.Errorf("reading %q: %w", f.Rel, err)
	}
	if n != f.Size {
		return fmt.Errorf("%q changed size while packer was reading it; retry when nothing is writing to the context", f.Rel)
	}
	return nil
}

// FromFiles returns a layer of files placed by spec, reusing a stored blob
// when the same files (by content) were layered the same way before. hit
// reports whether the blob came from the store.
func (s *Store) FromFiles(ctx context.Context, files []File, spec Spec) (l *Layer, hit bool, err error) {
	sum, err := HashFiles(ctx, files)
	if err != nil {
		return nil, false, err
	}
	key := Key("files/v1", s.Compressor(), fmt.Sprintf("%s %d:%d", spec.Dest, spec.UID, spec.GID), sum)
	if ls, ok := s.Lookup(key); ok && len(ls) == 1 {
		return ls[0], true, nil
	}
	l, err = s.Write(ctx, func(w io.Writer) error { return WriteTar(w, files, spec) })
	if err != nil {
		return nil, false, err
	}
	return l, false, s.Record(key, []*Layer{l})
}

// FromEntries returns a layer of synthetic entries, cached by content
// (hit: it was in the cache).
func (s *Store) FromEntries(ctx context.Context, entries []Entry) (l *Layer, hit bool, err error) {
	b, err := json.Marshal(entries)
	if err != nil {
		return nil, false, err
	}
	key := Key("entries/v1", s.Compressor(), string(b))
	if ls, ok := s.Lookup(key); ok && len(ls) == 1 {
		return ls[0], true, nil
	}
	l, err = s.Write(ctx, func(w io.Writer) error { return WriteEntries(w, entries) })
	if err != nil {
		return nil, false, err
	}
	return l, false, s.Record(key, []*Layer{l})
}

// compressor is the store's layer compressor writing to w.
func (s *Store) compressor(w io.Writer) (io.WriteCloser, error) {
	if s.Compression == Zstd {
		// Jobs of four windows compressed in parallel: the split depends
		// on the window, not on the cores.
		return zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithWindowSize(zstdWindow),
			zstd.WithEncoderConcurrency(max(2, runtime.GOMAXPROCS(0))), zstd.WithConcurrentBlocks(true))
	}
	// Blocks compressed in parallel on every core (klauspost/pgzip, with
	// a fixed block size: see GzipBlock).
	zw, err := pgzip.NewWriterLevel(w, GzipLevel)
	if err != nil {
		return nil, err
	}
	if err := zw.SetConcurrency(GzipBlock, max(2, 2*runtime.GOMAXPROCS(0))); err != nil {
		return nil, err
	}
	return zw, nil
}
