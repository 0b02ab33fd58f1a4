package oci

import "time"

// Event is one thing a build did, for progress displays and machine
// readers (packer build --progress json): a step starting, ending or
// skipped, a layer written or reused, bytes pushed, an output published,
// the result.
type Event struct {
	Time time.Time `json:"time"`
	// Type: step-start, step-done, step-cached, layer, push, published,
	// phase, result.
	Type     string `json:"type"`
	Platform string `json:"platform,omitempty"`
	Step     string `json:"step,omitempty"`
	Command  string `json:"command,omitempty"`
	// Layer (type layer).
	Layer  string `json:"layer,omitempty"`
	Digest string `json:"digest,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Reused bool   `json:"reused,omitempty"`
	// Push progress (type push): bytes done of total.
	Complete int64 `json:"complete,omitempty"`
	Total    int64 `json:"total,omitempty"`
	// Phase (type phase): its name and how long it took.
	Phase    string        `json:"phase,omitempty"`
	Duration time.Duration `json:"durationNs,omitempty"`
	// Ref is what was published or pushed (type published).
	Ref string `json:"ref,omitempty"`
}

// Events receives events; nil discards them. It must not block for long.
type Events func(Event)

// Emit sends e, stamped with the time, when f is set.
func (f Events) Emit(e Event) {
	if f != nil {
		if e.Time.IsZero() {
			e.Time = time.Now()
		}
		f(e)
	}
}
