package builder

import (
	"io"
	"sync"
	"time"
)

// DefaultHeartbeat is how long a step may stay silent before the log
// says it is still running (npm compiling a native addon prints nothing
// for minutes); Options.Heartbeat changes it.
const DefaultHeartbeat = 30 * time.Second

// heartbeat logs "still running" lines while a step's output is silent.
type heartbeat struct {
	mu   sync.Mutex
	last time.Time
	done chan struct{}
	once sync.Once
}

func newHeartbeat(b *builder, step, platform string, start time.Time) *heartbeat {
	every := b.opts.Heartbeat
	if every <= 0 {
		every = DefaultHeartbeat
	}
	h := &heartbeat{last: start, done: make(chan struct{})}
	go func() {
		t := time.NewTicker(every / 3)
		defer t.Stop()
		for {
			select {
			case <-h.done:
				return
			case now := <-t.C:
				h.mu.Lock()
				silent := now.Sub(h.last) >= every
				if silent {
					h.last = now
				}
				h.mu.Unlock()
				if silent {
					b.logf("step %s (%s): still running (%s)", step, platform, now.Sub(start).Round(time.Second))
				}
			}
		}
	}()
	return h
}

// wrap returns w, noting each write as a sign of life.
func (h *heartbeat) wrap(w io.Writer) io.Writer {
	return writerFunc(func(p []byte) (int, error) {
		h.mu.Lock()
		h.last = time.Now()
		h.mu.Unlock()
		return w.Write(p)
	})
}

func (h *heartbeat) stop() { h.once.Do(func() { close(h.done) }) }

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
