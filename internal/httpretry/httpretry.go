// Package httpretry retries HTTP requests that a server refused for now
// (429, 5xx) or whose connection broke, when they can be sent again:
// registries, Fulcio and Rekor all go through it.
package httpretry

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// MaxWait caps how long a Retry-After header may make a request wait.
var MaxWait = 60 * time.Second

// Transport sends a request again when the server answered 429 or a 5xx
// (but 501), or the connection broke, and the request can be sent again:
// no body, or one it can rewind (GetBody: manifests, blob PATCHes from
// files, JSON posts). It waits as Retry-After says when the answer has
// one (capped at MaxWait), else backs off exponentially with jitter.
// For registries, go-containerregistry's retry sits above it (it ignores
// Retry-After and redoes whole blob uploads); this layer makes each
// request survive a flaky server on its own.
type Transport struct {
	// Inner sends the requests.
	Inner http.RoundTripper
	// Attempts is how many times a request is sent at most.
	Attempts int
	// Base is the first backoff; it doubles per attempt (capped at 8 s).
	Base time.Duration
	// Stop, when set, says an error is final (no retry).
	Stop func(error) bool
}

func (r *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 1; ; attempt++ {
		resp, err := r.Inner.RoundTrip(req)
		if attempt >= r.Attempts || !replayable || req.Context().Err() != nil {
			return resp, err
		}
		var wait time.Duration
		switch {
		case err != nil:
			if r.Stop != nil && r.Stop(err) || !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)) {
				return resp, err
			}
			wait = backoff(r.Base, attempt)
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
			var ok bool
			if wait, ok = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); !ok {
				wait = backoff(r.Base, attempt)
			}
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // reuse the connection
			resp.Body.Close()
		default:
			if req.Method == http.MethodGet && resp.StatusCode == http.StatusOK && resp.Body != nil {
				resp.Body = &resumable{t: r, req: req, body: resp.Body, left: r.Attempts - 1}
			}
			return resp, nil
		}
		if err := sleepCtx(req.Context(), min(wait, MaxWait)); err != nil {
			return nil, err
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
	}
}

// backoff is base·2^(attempt-1), capped at 8 s, with ±25 % jitter.
func backoff(base time.Duration, attempt int) time.Duration {
	d := base << (attempt - 1)
	if d > 8*time.Second || d <= 0 {
		d = 8 * time.Second
	}
	return d - d/4 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// parseRetryAfter reads Retry-After: seconds, or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// resumable is a GET response body that survives a broken connection:
// the request is sent again for the rest (Range: bytes=N-; a server that
// answers 200 instead of 206 sends it all, and the part already read is
// skipped), up to the transport's attempts.
type resumable struct {
	t    *Transport
	req  *http.Request
	body io.ReadCloser
	read int64
	left int
}

func (b *resumable) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.read += int64(n)
	if err == nil || err == io.EOF || b.left <= 0 || b.req.Context().Err() != nil || b.t.Stop != nil && b.t.Stop(err) {
		return n, err
	}
	if !(errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.EPIPE)) {
		return n, err
	}
	b.left--
	b.body.Close()
	if rerr := sleepCtx(b.req.Context(), backoff(b.t.Base, b.t.Attempts-b.left)); rerr != nil {
		return n, err
	}
	req := b.req.Clone(b.req.Context())
	req.Header.Set("Range", "bytes="+strconv.FormatInt(b.read, 10)+"-")
	resp, rerr := b.t.Inner.RoundTrip(req)
	if rerr != nil {
		return n, err
	}
	switch resp.StatusCode {
	case http.StatusPartialContent:
	case http.StatusOK:
		if _, serr := io.CopyN(io.Discard, resp.Body, b.read); serr != nil {
			resp.Body.Close()
			return n, err
		}
	default:
		resp.Body.Close()
		return n, err
	}
	b.body = resp.Body
	return n, nil
}

func (b *resumable) Close() error { return b.body.Close() }
