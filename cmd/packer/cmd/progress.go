package cmd

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	"golang.org/x/sys/unix"

	"github.com/packer-build/packer/oci"
)

// Progress modes (--progress).
const (
	ProgressAuto  = "auto"
	ProgressTTY   = "tty"
	ProgressPlain = "plain"
	ProgressJSON  = "json"
	ProgressQuiet = "quiet"
)

// isTerminal reports whether f is a terminal.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// progress turns a build's log lines and events into what the user sees
// on stderr: plain lines (with a heartbeat in silent phases), one JSON
// event per line, or a live status line under the log on a terminal. It
// also keeps what the end-of-build summary needs.
type progress struct {
	mode string
	out  io.Writer
	now  func() time.Time

	mu       sync.Mutex
	lastLine time.Time
	// running steps (platform/step → start, command); the last output
	// line of any step.
	steps    map[string]time.Time
	lastOut  string
	push     map[string][2]int64 // repo → complete, total
	pushAt   map[string]time.Time
	pushFrom map[string]int64
	phases   []oci.Event
	layers   []oci.Event
	drawn    bool
	partial  []byte
	pushDone bool
	stop     chan struct{}
	done     chan struct{}
}

func newProgress(mode string, out io.Writer) *progress {
	return &progress{mode: mode, out: out, now: time.Now, steps: map[string]time.Time{}, push: map[string][2]int64{},
		pushAt: map[string]time.Time{}, pushFrom: map[string]int64{}}
}

// start runs the ticker: the heartbeat in plain mode (a line after 10 s
// with no output), the redraw of the status line in tty mode.
func (p *progress) start() {
	if p.mode != ProgressPlain && p.mode != ProgressTTY {
		return
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	p.lastLine = p.now()
	every := 10 * time.Second
	if p.mode == ProgressTTY {
		every = 100 * time.Millisecond
	}
	go func() {
		defer close(p.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.tick()
			}
		}
	}()
}

// finish stops the ticker and clears the status line.
func (p *progress) finish() {
	if p.stop != nil {
		close(p.stop)
		<-p.done
		p.stop = nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
}

func (p *progress) tick() {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.mode {
	case ProgressPlain:
		if silent := p.now().Sub(p.lastLine); silent >= 10*time.Second {
			fmt.Fprintf(p.out, "packer: … still working: %s (%s without output)\n", p.activity(), silent.Round(time.Second))
			p.lastLine = p.now()
		}
	case ProgressTTY:
		p.draw()
	}
}

// activity names what is going on, for the heartbeat.
func (p *progress) activity() string {
	if len(p.steps) > 0 {
		return "step " + strings.Join(slices.Sorted(maps.Keys(p.steps)), ", ")
	}
	if len(p.push) > 0 {
		return "pushing"
	}
	return "building"
}

// Write takes the build's log.
func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastLine = p.now()
	if p.mode == ProgressPlain {
		return p.out.Write(b)
	}
	p.partial = append(p.partial, b...)
	for {
		i := strings.IndexByte(string(p.partial), '\n')
		if i < 0 {
			return len(b), nil
		}
		line := string(p.partial[:i])
		p.partial = p.partial[i+1:]
		if err := p.line(line); err != nil {
			return 0, err
		}
	}
}

// line shows one whole log line.
func (p *progress) line(line string) error {
	text := strings.TrimPrefix(line, "packer: ")
	switch p.mode {
	case ProgressJSON:
		p.emitJSON(map[string]any{"time": p.now().UTC(), "type": "log", "message": text})
	case ProgressTTY:
		p.clear()
		if _, err := fmt.Fprintln(p.out, line); err != nil {
			return err
		}
		if strings.TrimSpace(text) != "" && len(p.steps) > 0 {
			p.lastOut = strings.TrimSpace(text)
		}
		p.draw()
	default:
		_, err := fmt.Fprintln(p.out, line)
		return err
	}
	return nil
}

// event takes a build event.
func (p *progress) event(e oci.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := e.Platform + " " + e.Step
	switch e.Type {
	case "step-start":
		p.steps[strings.TrimSpace(key)] = e.Time
		p.lastOut = ""
	case "step-done", "step-cached":
		delete(p.steps, strings.TrimSpace(key))
	case "push":
		if _, ok := p.pushAt[e.Ref]; !ok {
			p.pushAt[e.Ref], p.pushFrom[e.Ref] = e.Time, 0
		}
		p.push[e.Ref] = [2]int64{e.Complete, e.Total}
	case "phase":
		p.phases = append(p.phases, e)
	case "layer":
		p.layers = append(p.layers, e)
	case "published":
		if e.Ref == "registry" {
			p.pushDone = true
		}
	}
	if p.mode == ProgressJSON && e.Type != "push" || p.mode == ProgressJSON && e.Complete == e.Total {
		p.emitJSON(e)
	}
}

func (p *progress) emitJSON(v any) {
	b, err := json.Marshal(v)
	if err == nil {
		fmt.Fprintf(p.out, "%s\n", b)
	}
}

// clear erases the status line (tty).
func (p *progress) clear() {
	if p.mode == ProgressTTY && p.drawn {
		fmt.Fprint(p.out, "\r\033[K")
		p.drawn = false
	}
}

// frame is the status line: each running step with its timer and the
// last line it printed, and each push with a bar, bytes and rate.
func (p *progress) frame() string {
	now := p.now()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(p.steps)) {
		s := fmt.Sprintf("step %s %.1fs", k, now.Sub(p.steps[k]).Seconds())
		if p.lastOut != "" {
			s += " │ " + clip(p.lastOut, 40)
		}
		parts = append(parts, s)
	}
	repos := make([]string, 0, len(p.push))
	for r := range p.push {
		if !p.pushDone {
			repos = append(repos, r)
		}
	}
	sort.Strings(repos)
	for _, r := range repos {
		c, t := p.push[r][0], p.push[r][1]
		if t <= 0 {
			continue
		}
		const width = 20
		fill := int(float64(width) * float64(c) / float64(t))
		rate := ""
		if d := now.Sub(p.pushAt[r]).Seconds(); d > 0 {
			rate = " " + units.HumanSize(float64(c-p.pushFrom[r])/d) + "/s"
		}
		parts = append(parts, fmt.Sprintf("push %s [%s%s] %s/%s%s", r, strings.Repeat("=", fill), strings.Repeat(" ", width-fill), units.HumanSize(float64(c)), units.HumanSize(float64(t)), rate))
	}
	return strings.Join(parts, "  ")
}

func (p *progress) draw() {
	f := p.frame()
	if f == "" {
		p.clear()
		return
	}
	fmt.Fprint(p.out, "\r\033[K"+clip(f, 160))
	p.drawn = true
}

func clip(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// summary is the end-of-build block: refs and digest, size, each layer
// reused or new, bytes pushed, time per phase.
func (p *progress) summary(refs []string, digest string, size int64) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "packer: summary\n")
	fmt.Fprintf(&b, "  image    %s\n", digest)
	for _, r := range refs {
		fmt.Fprintf(&b, "  ref      %s\n", r)
	}
	var reused, fresh int
	var newBytes int64
	for _, l := range p.layers {
		if l.Reused {
			reused++
		} else {
			fresh++
			newBytes += l.Size
		}
	}
	fmt.Fprintf(&b, "  size     %s (packer's layers: %d reused, %d new, %s new)\n", units.HumanSize(float64(size)), reused, fresh, units.HumanSize(float64(newBytes)))
	var phases []string
	for _, ph := range p.phases {
		phases = append(phases, fmt.Sprintf("%s %s", ph.Phase, ph.Duration.Round(time.Millisecond)))
	}
	if len(phases) > 0 {
		fmt.Fprintf(&b, "  phases   %s\n", strings.Join(phases, ", "))
	}
	return b.String()
}
