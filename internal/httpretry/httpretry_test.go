package httpretry

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
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

// TestResumeBrokenDownload: a GET whose connection breaks mid-body is
// resumed, with Range where the server honours it and by skipping what
// was read where it sends everything again; the reader gets every byte
// once.
func TestResumeBrokenDownload(t *testing.T) {
	blob := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	for _, ranges := range []bool{true, false} {
		var calls atomic.Int64
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				// Half the body, then the connection drops.
				w.Header().Set("Content-Length", strconv.Itoa(len(blob)))
				w.WriteHeader(http.StatusOK)
				w.Write(blob[:len(blob)/2])
				w.(http.Flusher).Flush()
				conn, _, _ := w.(http.Hijacker).Hijack()
				conn.Close()
				return
			}
			if rg := r.Header.Get("Range"); ranges && rg != "" {
				var from int
				fmt.Sscanf(rg, "bytes=%d-", &from)
				w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, len(blob)-1, len(blob)))
				w.WriteHeader(http.StatusPartialContent)
				w.Write(blob[from:])
				return
			}
			w.Write(blob)
		}))
		client := &http.Client{Transport: &Transport{Inner: http.DefaultTransport, Attempts: 5, Base: 10 * time.Millisecond}}
		resp, err := client.Get(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		s.Close()
		if err != nil || !bytes.Equal(got, blob) || calls.Load() != 2 {
			t.Errorf("ranges %v: read %d of %d bytes (equal %v), err %v, %d requests; want the whole blob in 2", ranges, len(got), len(blob), bytes.Equal(got, blob), err, calls.Load())
		}
	}
}
