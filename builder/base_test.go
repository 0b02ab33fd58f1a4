package builder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/packer-build/packer/layers"
)

// Reading the base's facts passes each layer it reads whole to the
// store's Tee (the SBOM scanner), so the image's SBOM does not
// decompress the base a second time.
func TestBaseFactsFeedTheTee(t *testing.T) {
	var buf bytes.Buffer
	if err := layers.WriteEntries(&buf, []layers.Entry{
		{Name: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{Name: "/usr/bin/tini", Mode: 0o755, Data: []byte("not really tini")},
		{Name: "/var/lib/dpkg/status", Mode: 0o644, Data: bytes.Repeat([]byte("Package: x\n\n"), 1000)},
	}); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	store, err := layers.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var teed []v1.Hash
	var sum string
	store.Tee = func(r io.Reader) func(layers.Descriptor) {
		h := sha256.New()
		if _, err := io.Copy(h, r); err != nil {
			t.Errorf("Tee read: %v", err)
		}
		sum = "sha256:" + hex.EncodeToString(h.Sum(nil))
		return func(d layers.Descriptor) { teed = append(teed, d.Digest) }
	}
	f, err := inspectBase(t.Context(), store, img)
	if err != nil {
		t.Fatal(err)
	}
	if f.Init != "/usr/bin/tini" {
		t.Errorf("init = %q", f.Init)
	}
	d, _ := l.Digest()
	diff, _ := l.DiffID()
	if len(teed) != 1 || teed[0] != d {
		t.Fatalf("Tee callbacks for %v, want one for the layer %v", teed, d)
	}
	if sum != diff.String() {
		t.Errorf("the Tee read a stream with digest %s; the layer's diffID is %s", sum, diff)
	}
}
