package httpretry

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// flaky answers the first n requests with status (and Retry-After), then
// 200 echoing the body.
func flaky(t *testing.T, n int64, status int, retryAfter string) (*httptest.Server, *atomic.Int64) {
	var calls atomic.Int64
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if calls.Add(1) <= n {
			if retryAfter != "" {
				w.Header().Set("Retry-After", retryAfter)
			}
			w.WriteHeader(status)
			return
		}
		w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s, &calls
}

func TestRetries(t *testing.T) {
	client := &http.Client{Transport: &Transport{Inner: http.DefaultTransport, Attempts: 5, Base: 10 * time.Millisecond}}

	s, calls := flaky(t, 2, http.StatusServiceUnavailable, "")
	resp, err := client.Post(s.URL, "text/plain", bytes.NewReader([]byte("payload")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "payload" || calls.Load() != 3 {
		t.Errorf("after two 503s: %d %q in %d calls; want 200 with the body sent again, 3 calls", resp.StatusCode, b, calls.Load())
	}

	s, calls = flaky(t, 1, http.StatusTooManyRequests, "1")
	start := time.Now()
	resp, err = client.Get(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || time.Since(start) < time.Second {
		t.Errorf("429 with Retry-After: 1 → %d after %s; want 200 after ≥ 1s", resp.StatusCode, time.Since(start))
	}

	s, calls = flaky(t, 10, http.StatusNotImplemented, "")
	resp, _ = client.Get(s.URL)
	resp.Body.Close()
	if calls.Load() != 1 {
		t.Errorf("501 was retried (%d calls)", calls.Load())
	}

	s, calls = flaky(t, 10, http.StatusBadGateway, "")
	resp, _ = client.Get(s.URL)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || calls.Load() != 5 {
		t.Errorf("a server that keeps failing: %d in %d calls; want the 502 after 5", resp.StatusCode, calls.Load())
	}

	// A body that cannot be rewound is sent once.
	s, calls = flaky(t, 1, http.StatusServiceUnavailable, "")
	req, _ := http.NewRequest(http.MethodPost, s.URL, io.NopCloser(strings.NewReader("stream")))
	resp, err = client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || calls.Load() != 1 {
		t.Errorf("a streamed body was sent again: %d in %d calls", resp.StatusCode, calls.Load())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{{"3", 3 * time.Second, true}, {"0", 0, true}, {"", 0, false}, {"soon", 0, false}, {now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second, true}} {
		got, ok := parseRetryAfter(c.v, now)
		if got != c.want || ok != c.ok {
			t.Errorf("parseRetryAfter(%q) = %s, %v; want %s, %v", c.v, got, ok, c.want, c.ok)
		}
	}
}
