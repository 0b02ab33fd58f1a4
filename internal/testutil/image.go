package testutil

import (
	"archive/tar"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// ImageFile is one entry of an image's layers.
type ImageFile struct {
	Header *tar.Header
	Data   []byte
}

// ImageFiles reads every layer of img, bottom up, and returns its entries
// by tar name (later layers win).
func ImageFiles(t testing.TB, img v1.Image) map[string]ImageFile {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ImageFile{}
	for _, l := range ls {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			out[h.Name] = ImageFile{h, b}
		}
		rc.Close()
	}
	return out
}
