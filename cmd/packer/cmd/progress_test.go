package cmd

import (
	"strings"
	"testing"
	"time"

	"github.com/packer-build/packer/oci"
)

// fakeClock returns t, advanced by the test.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

// TestProgressFrames: the tty status line, frame by frame on a fixed
// clock: a step's timer with the last line it printed, then a push bar
// with bytes and rate; log lines go above it, each clearing the line.
func TestProgressFrames(t *testing.T) {
	var out strings.Builder
	clock := &fakeClock{time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)}
	p := newProgress(ProgressTTY, &out)
	p.now = clock.now
	t0 := clock.t
	p.event(oci.Event{Type: "step-start", Platform: "linux/amd64", Step: "build", Time: t0})
	p.Write([]byte("packer: compiling server.ts\n"))
	clock.t = t0.Add(2500 * time.Millisecond)
	if got, want := p.frame(), "step linux/amd64 build 2.5s │ compiling server.ts"; got != want {
		t.Errorf("frame with a running step:\n got %q\nwant %q", got, want)
	}
	p.event(oci.Event{Type: "step-done", Platform: "linux/amd64", Step: "build", Time: clock.t})
	p.event(oci.Event{Type: "push", Ref: "reg.example/app", Complete: 0, Total: 12_000_000, Time: t0.Add(3 * time.Second)})
	p.event(oci.Event{Type: "push", Ref: "reg.example/app", Complete: 4_000_000, Total: 12_000_000, Time: t0.Add(4 * time.Second)})
	clock.t = t0.Add(5 * time.Second)
	if got, want := p.frame(), "push reg.example/app [======              ] 4MB/12MB 2MB/s"; got != want {
		t.Errorf("frame with a push:\n got %q\nwant %q", got, want)
	}
	p.event(oci.Event{Type: "published", Ref: "registry"})
	if got := p.frame(); got != "" {
		t.Errorf("frame after publishing: %q, want none", got)
	}
	// A log line clears the drawn status line first, then draws it again.
	p.event(oci.Event{Type: "step-start", Platform: "linux/amd64", Step: "test", Time: clock.t})
	p.Write([]byte("packer: ok 12 tests\n"))
	if !strings.Contains(out.String(), "compiling server.ts\r\033[Kpacker: ok 12 tests\n\r\033[Kstep linux/amd64 test 0.0s │ ok 12 tests") {
		t.Errorf("the log line was not written above the status line: %q", out.String())
	}
}

// TestProgressPlainHeartbeat: in plain mode, 10 s without a line give a
// heartbeat naming what is running.
func TestProgressPlainHeartbeat(t *testing.T) {
	var out strings.Builder
	clock := &fakeClock{time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)}
	p := newProgress(ProgressPlain, &out)
	p.now = clock.now
	p.Write([]byte("packer: step deps (linux/amd64): npm ci\n"))
	p.event(oci.Event{Type: "step-start", Platform: "linux/amd64", Step: "deps", Time: clock.t})
	clock.t = clock.t.Add(9 * time.Second)
	p.tick()
	clock.t = clock.t.Add(3 * time.Second)
	p.tick()
	want := "packer: step deps (linux/amd64): npm ci\npacker: … still working: step linux/amd64 deps (12s without output)\n"
	if out.String() != want {
		t.Errorf("plain output:\n got %q\nwant %q", out.String(), want)
	}
}

// TestProgressJSON: one JSON object per line: log lines as type log, the
// events as they are.
func TestProgressJSON(t *testing.T) {
	var out strings.Builder
	clock := &fakeClock{time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC)}
	p := newProgress(ProgressJSON, &out)
	p.now = clock.now
	p.Write([]byte("packer: step build (linux/amd64): go build\npacker: par"))
	p.Write([]byte("tial line\n"))
	p.event(oci.Event{Type: "layer", Platform: "linux/amd64", Layer: "app", Digest: "sha256:ab", Size: 42, Time: clock.t})
	p.event(oci.Event{Type: "push", Ref: "r/app", Complete: 1, Total: 2, Time: clock.t})
	want := `{"message":"step build (linux/amd64): go build","time":"2026-12-05T06:00:00Z","type":"log"}
{"message":"partial line","time":"2026-12-05T06:00:00Z","type":"log"}
{"time":"2026-12-05T06:00:00Z","type":"layer","platform":"linux/amd64","layer":"app","digest":"sha256:ab","size":42}
`
	if out.String() != want {
		t.Errorf("json output:\n got %s\nwant %s", out.String(), want)
	}
}
