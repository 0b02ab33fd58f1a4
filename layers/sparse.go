package layers

import (
	"errors"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// region is a run of a file's bytes that may hold data: [off, off+n).
type region struct{ off, n int64 }

// dataRegions lists where a file of size bytes stores data, asking the
// file system with SEEK_DATA/SEEK_HOLE: the rest are holes, which read as
// zeros and take no disk space. sparse is false for a file without holes
// (or where the file system cannot tell), which is then one region. The
// holes are the file system's record of the file, not its content: the
// same bytes written densely read the same.
func dataRegions(f *os.File, size int64) (regions []region, sparse bool) {
	whole := []region{{0, size}}
	if size < sparseMin {
		return whole, false
	}
	fd := int(f.Fd())
	// Seeking for data and holes moves the file's offset: put it back.
	// A failed seek back fails the read that follows.
	defer func() { _, _ = f.Seek(0, io.SeekStart) }()
	for off := int64(0); off < size; {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole to the end
		}
		if err != nil {
			return whole, false
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return whole, false
		}
		if hole > size {
			hole = size
		}
		regions = append(regions, region{data, hole - data})
		off = hole
	}
	if len(regions) == 1 && regions[0] == whole[0] {
		return whole, false
	}
	return regions, true
}

// sparseMin: smaller files are read whole (a hole is at least a block).
const sparseMin = 64 << 10

// sparseReader reads a file of size bytes region by region, giving zeros
// for the holes without reading them from the file.
type sparseReader struct {
	f       *os.File
	regions []region
	off     int64
	size    int64
}

func (r *sparseReader) Read(p []byte) (int, error) {
	if r.off >= r.size {
		return 0, io.EOF
	}
	for len(r.regions) > 0 && r.regions[0].off+r.regions[0].n <= r.off {
		r.regions = r.regions[1:]
	}
	if len(p) > int(r.size-r.off) {
		p = p[:r.size-r.off]
	}
	if len(r.regions) == 0 || r.off < r.regions[0].off {
		next := r.size
		if len(r.regions) > 0 {
			next = r.regions[0].off
		}
		if int64(len(p)) > next-r.off {
			p = p[:next-r.off]
		}
		clear(p)
		r.off += int64(len(p))
		return len(p), nil
	}
	reg := r.regions[0]
	if int64(len(p)) > reg.off+reg.n-r.off {
		p = p[:reg.off+reg.n-r.off]
	}
	n, err := r.f.ReadAt(p, r.off)
	r.off += int64(n)
	if err == io.EOF {
		if n == 0 {
			return 0, io.ErrUnexpectedEOF // the file shrank
		}
		err = nil
	}
	return n, err
}
