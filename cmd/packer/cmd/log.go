package cmd

import (
	"bytes"
	"io"
	"sync"
)

// prefixWriter prefixes each line written to w with "packer: " unless it
// already has it, so step output and packer's own lines read as one log.
func prefixWriter(w io.Writer) io.Writer {
	if w == io.Discard {
		return w
	}
	return &linePrefixer{w: w, prefix: []byte("packer: ")}
}

type linePrefixer struct {
	mu     sync.Mutex
	w      io.Writer
	prefix []byte
	mid    bool
}

func (l *linePrefixer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(p)
	for len(p) > 0 {
		if !l.mid {
			if _, err := l.w.Write(l.prefix); err != nil {
				return 0, err
			}
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.mid = true
			_, err := l.w.Write(p)
			return n, err
		}
		if _, err := l.w.Write(p[:i+1]); err != nil {
			return 0, err
		}
		l.mid = false
		p = p[i+1:]
	}
	return n, nil
}
