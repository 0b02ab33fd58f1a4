package layers

import (
	"bufio"
	"io"
)

const (
	chunkSize   = 256 << 10
	queueChunks = 8
)

// pipeline runs produce on its own goroutine, writing into a bounded queue
// of chunks that the calling goroutine copies to dst. Peak extra memory is
// about (queueChunks+2) × chunkSize. The first error of either side wins.
func pipeline(dst io.Writer, produce func(io.Writer) error) error {
	full := make(chan []byte, queueChunks)
	free := make(chan []byte, queueChunks+2)
	for i := 0; i < queueChunks+2; i++ {
		free <- make([]byte, 0, chunkSize)
	}
	stop := make(chan struct{})
	perr := make(chan error, 1)
	go func() {
		cw := &chunkWriter{full: full, free: free, stop: stop}
		bw := bufio.NewWriterSize(cw, chunkSize)
		err := produce(bw)
		if err == nil {
			err = bw.Flush()
		}
		close(full)
		perr <- err
	}()
	var werr error
	for c := range full {
		if werr == nil {
			if _, err := dst.Write(c); err != nil {
				werr = err
				close(stop) // unblock the producer; it sees errStopped
			}
		}
		free <- c[:0]
	}
	if err := <-perr; err != nil && werr == nil {
		return err
	}
	return werr
}

type chunkWriter struct {
	full chan<- []byte
	free <-chan []byte
	stop <-chan struct{}
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	var buf []byte
	select {
	case buf = <-c.free:
	case <-c.stop:
		return 0, io.ErrClosedPipe
	}
	buf = append(buf, p...)
	select {
	case c.full <- buf:
		return len(p), nil
	case <-c.stop:
		return 0, io.ErrClosedPipe
	}
}
