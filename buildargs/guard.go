package buildargs

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
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
			needles = append(needles, needle{s.ID, v})
			if len(v) > maxLen {
				maxLen = len(v)
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
	tr := tar.NewReader(rc)
	// Each read brings at least max(256 KiB, maxLen) new bytes after the
	// maxLen-1 bytes kept from the last one, so any secret size makes
	// progress in memory bounded by twice the longest value.
	buf := make([]byte, maxLen-1+max(256<<10, maxLen))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading layer %s: %w", name, err)
		}
		if id := find([]byte(h.Name + "\x00" + h.Linkname)); id != "" {
			return &LeakError{Secret: id, Where: "layer " + name, Path: h.Name}
		}
		// Stream the body, keeping maxLen-1 bytes of overlap between reads.
		keep := 0
		for {
			n, err := io.ReadFull(tr, buf[keep:])
			if n > 0 {
				window := buf[:keep+n]
				if id := find(window); id != "" {
					return &LeakError{Secret: id, Where: "layer " + name, Path: h.Name}
				}
				keep = min(maxLen-1, len(window))
				copy(buf, window[len(window)-keep:])
			}
			if err != nil {
				break
			}
		}
	}
}
