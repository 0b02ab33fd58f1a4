package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/packer-build/packer/internal/httpretry"
)

// DefaultTimeout is how long a registry may make no progress (no
// connection, no response headers, no bytes read or written) before the
// request fails.
const DefaultTimeout = 60 * time.Second

// retryBackoff is go-containerregistry's retry of failed requests and
// whole blob uploads, over httpretry's per-request one: 4 attempts, 1 s
// doubling with jitter. Its default (3 attempts over ~4 s) gives up on a
// registry that is briefly overloaded.
var retryBackoff = remote.Backoff{Duration: time.Second, Factor: 2, Jitter: 0.25, Steps: 4, Cap: 20 * time.Second}

// retryStatus are the statuses retried: timeouts, rate limits and server
// errors.
var retryStatus = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// StallError is returned when a registry made no progress for the
// timeout.
type StallError struct {
	Method, URL string
	Timeout     time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("the registry made no progress for %s on %s %s; it may be down or overloaded: try again, or raise --registry-timeout", e.Timeout, e.Method, e.URL)
}

// transport returns the client's HTTP transport: explicit connection
// timeouts, a progress deadline on every request, and waits for
// Retry-After (go-containerregistry's own retry, configured in
// RemoteOptions, wraps it).
func (c *Client) transport() http.RoundTripper {
	c.once.Do(func() {
		timeout := c.Timeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		inner := c.Transport
		if inner == nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
			t.TLSHandshakeTimeout = 15 * time.Second
			t.ResponseHeaderTimeout = timeout
			t.IdleConnTimeout = 90 * time.Second
			t.ExpectContinueTimeout = time.Second
			if c.CAFile != "" {
				pool, err := x509.SystemCertPool()
				if err != nil || pool == nil {
					pool = x509.NewCertPool()
				}
				pem, err := os.ReadFile(c.CAFile)
				switch {
				case err != nil:
					c.caErr = fmt.Errorf("--registry-ca: %w", err)
				case !pool.AppendCertsFromPEM(pem):
					c.caErr = fmt.Errorf("--registry-ca %s holds no PEM certificate; give the registry's CA certificate in PEM", c.CAFile)
				}
				t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
			}
			inner = t
		}
		c.rt = &httpretry.Transport{Inner: &progress{inner: inner, timeout: timeout}, Attempts: 5, Base: 250 * time.Millisecond,
			Stop: func(err error) bool { var s *StallError; return errors.As(err, &s) }}
	})
	return c.rt
}

// progress fails a request that makes no progress for timeout: the
// deadline moves each time the request body is read (an upload going
// out) or the response body is read (a download coming in).
type progress struct {
	inner   http.RoundTripper
	timeout time.Duration
}

func (p *progress) RoundTrip(req *http.Request) (*http.Response, error) {
	parent := req.Context()
	ctx, cancel := context.WithCancelCause(parent)
	stall := &StallError{Method: req.Method, URL: req.URL.Redacted(), Timeout: p.timeout}
	timer := time.AfterFunc(p.timeout, func() { cancel(stall) })
	touch := func() { timer.Reset(p.timeout) }
	req = req.Clone(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &touchReader{ReadCloser: req.Body, touch: touch}
	}
	resp, err := p.inner.RoundTrip(req)
	if err != nil {
		timer.Stop()
		cause := context.Cause(ctx)
		cancel(nil)
		var ne net.Error
		if errors.Is(cause, stall) || errors.As(err, &ne) && ne.Timeout() && parent.Err() == nil {
			return nil, stall // ours, or the transport's wait for headers
		}
		return nil, err
	}
	touch()
	resp.Body = &touchReader{ReadCloser: resp.Body, touch: touch, done: func() {
		timer.Stop()
		cancel(nil)
	}, stalled: func() error {
		if errors.Is(context.Cause(ctx), stall) {
			return stall
		}
		return nil
	}}
	return resp, nil
}

// touchReader calls touch on every read, and done once on close.
type touchReader struct {
	io.ReadCloser
	touch   func()
	done    func()
	stalled func() error
	once    sync.Once
}

func (r *touchReader) Read(b []byte) (int, error) {
	n, err := r.ReadCloser.Read(b)
	if n > 0 {
		r.touch()
	}
	if err != nil && err != io.EOF && r.stalled != nil {
		if s := r.stalled(); s != nil {
			return n, s
		}
	}
	return n, err
}

func (r *touchReader) Close() error {
	err := r.ReadCloser.Close()
	if r.done != nil {
		r.once.Do(r.done)
	}
	return err
}
