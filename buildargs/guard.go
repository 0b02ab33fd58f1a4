package buildargs

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/layers"
)

// LeakError says where a secret value was found.
type LeakError struct {
	Secret string // the secret's id
	Where  string // "config", "manifest" or "layer NAME"
	Path   string // file in the layer, when in a layer
}

func (e *LeakError) Error() string {
	loc := e.Where
	if e.Path != "" {
		loc += " at /" + e.Path
	}
	return fmt.Sprintf("secret %s was found in the image (%s); nothing was published. Remove the copy (or .dockerignore the file that holds it) and build again", e.Secret, loc)
}

// Guard looks for the values of secrets in the parts of an image packer
// wrote: its config, its manifest and the given layers (digest → name).
// Base layers are not scanned.
func (ss Secrets) Guard(img v1.Image, layers map[v1.Hash]string) error {
	type needle struct {
		id  string
		val []byte
	}
	var needles []needle
	maxLen := 0
	for _, s := range ss {
		for _, v := range guardedValues(s.value) {
			for _, form := range append([][]byte{v}, encodedForms(v)...) {
				needles = append(needles, needle{s.ID, form})
				if len(form) > maxLen {
					maxLen = len(form)
				}
			}
		}
	}
	if len(needles) == 0 {
		return nil
	}
	// Longest first, so the most specific match names the secret.
	sort.Slice(needles, func(i, j int) bool { return len(needles[i].val) > len(needles[j].val) })
	find := func(b []byte) string {
		for _, n := range needles {
			if bytes.Contains(b, n.val) {
				return n.id
			}
		}
		return ""
	}
	redact := func(s string) string {
		for _, n := range needles {
			s = strings.ReplaceAll(s, string(n.val), "****")
		}
		return s
	}
	cfg, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	if id := find(cfg); id != "" {
		return &LeakError{Secret: id, Where: "config"}
	}
	man, err := img.RawManifest()
	if err != nil {
		return err
	}
	if id := find(man); id != "" {
		return &LeakError{Secret: id, Where: "manifest"}
	}
	ls, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		name, ok := layers[d]
		if !ok {
			continue
		}
		if err := scanLayer(l, name, find, maxLen); err != nil {
			var leak *LeakError
			if errors.As(err, &leak) {
				leak.Path = redact(leak.Path) // a path can hold the secret too
			}
			return err
		}
	}
	return nil
}

func scanLayer(l v1.Layer, name string, find func([]byte) string, maxLen int) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	// Each read brings at least max(256 KiB, maxLen) new bytes after the
	// maxLen-1 bytes kept from the last one, so any secret size makes
	// progress in memory bounded by twice the longest value.
	buf := make([]byte, maxLen-1+max(256<<10, maxLen))
	err = layers.Entries(rc, func(_ string, h *tar.Header, body io.Reader) error {
		if id := find([]byte(h.Name + "\x00" + h.Linkname)); id != "" {
			return &LeakError{Secret: id, Where: "layer " + name, Path: h.Name}
		}
		// Stream the body, keeping maxLen-1 bytes of overlap between reads.
		keep := 0
		for {
			n, err := io.ReadFull(body, buf[keep:])
			if n > 0 {
				window := buf[:keep+n]
				if id := find(window); id != "" {
					return &LeakError{Secret: id, Where: "layer " + name, Path: h.Name}
				}
				keep = min(maxLen-1, len(window))
				copy(buf, window[len(window)-keep:])
			}
			if err != nil {
				return nil
			}
		}
	})
	var leak *LeakError
	if err != nil && !errors.As(err, &leak) {
		return fmt.Errorf("reading layer %s: %w", name, err)
	}
	return err
}

// maxEncoded is the longest value whose encoded forms are looked for
// (a token, a password, a key line; not a whole CA bundle).
const maxEncoded = 4 << 10

// encodedForms are the ways a value is commonly written down encoded:
// base64 (standard and URL alphabets, padded or not, and as it reads
// inside a longer base64 text at each of the three byte alignments, as
// a token does in an "auth" field's user:token), hex (both cases), and
// percent-encoding (query and path forms).
func encodedForms(v []byte) [][]byte {
	if len(v) < MinGuardedLen || len(v) > maxEncoded {
		return nil
	}
	seen := map[string]bool{string(v): true}
	var out [][]byte
	add := func(s string) {
		if len(s) >= MinGuardedLen+2 && !seen[s] {
			seen[s] = true
			out = append(out, []byte(s))
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
		add(enc.EncodeToString(v))
		raw := enc.WithPadding(base64.NoPadding)
		for k := 0; k < 3; k++ {
			// k unknown bytes before v: the characters that depend on v
			// alone start at ceil(8k/6) and end at floor(8(k+n)/6).
			e := raw.EncodeToString(append(make([]byte, k), v...))
			start, end := (8*k+5)/6, 8*(k+len(v))/6
			if end > start {
				add(e[start:end])
			}
		}
	}
	add(hex.EncodeToString(v))
	add(strings.ToUpper(hex.EncodeToString(v)))
	add(url.QueryEscape(string(v)))
	add(url.PathEscape(string(v)))
	return out
}
