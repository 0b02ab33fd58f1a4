package sbom

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/packer-build/packer/layers"
)

func digests(t *testing.T, img v1.Image) []v1.Hash {
	t.Helper()
	ls, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// TestSplitReusesUnchangedLayersDocuments: two images that differ only in
// their top layer (a one-file change) share every other layer's document
// byte for byte, so a registry already holds them; the image documents
// differ and name the layer documents by checksum; Merge gives one
// complete document and refuses a layer document that was swapped.
func TestSplitReusesUnchangedLayersDocuments(t *testing.T) {
	img1 := testImage(t)
	img2, err := mutate.AppendLayers(img1, layerOf(t, []layers.Entry{
		{Name: "/app/server.js", Mode: 0o644, Data: []byte("console.log(1)\n")},
		{Name: "/app/package.json", Mode: 0o644, Data: []byte(`{"name":"app","version":"1.0.0"}`)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	img3, err := mutate.AppendLayers(img1, layerOf(t, []layers.Entry{
		{Name: "/app/server.js", Mode: 0o644, Data: []byte("console.log(2)\n")},
		{Name: "/app/package.json", Mode: 0o644, Data: []byte(`{"name":"app","version":"1.0.0"}`)},
	}))
	if err != nil {
		t.Fatal(err)
	}
	created := time.Unix(1700000000, 0)
	render := func(img v1.Image, format, digest string) []File {
		cs, err := Scan(t.Context(), img, nil)
		if err != nil {
			t.Fatal(err)
		}
		files, err := Documents(format, Subject{Name: "app", Digest: digest, Created: created, Tool: "packer test"}, cs, digests(t, img), "sbom."+ext[format])
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	for _, format := range []string{FormatSPDX, FormatCycloneDX} {
		t.Run(format, func(t *testing.T) {
			a := render(img2, format, "sha256:"+strings.Repeat("a", 64))
			b := render(img3, format, "sha256:"+strings.Repeat("b", 64))
			if len(a) != 4 || len(b) != 4 {
				t.Fatalf("want the image's document and three layers' (base, dependencies, app), got %d and %d", len(a), len(b))
			}
			if bytes.Equal(a[0].Data, b[0].Data) {
				t.Errorf("the image documents of two images are equal")
			}
			for i := 1; i < 4; i++ {
				same := bytes.Equal(a[i].Data, b[i].Data)
				changed := a[i].Layer != b[i].Layer
				if same == changed {
					t.Errorf("layer document %d (%s, %s): equal=%v though the layer changed=%v", i, a[i].Name, b[i].Name, same, changed)
				}
			}
			docs := func(fs []File) [][]byte {
				var out [][]byte
				for _, f := range fs {
					out = append(out, f.Data)
				}
				return out
			}
			merged, err := Merge(format, docs(a))
			if err != nil {
				t.Fatal(err)
			}
			cs, _ := Scan(t.Context(), img2, nil)
			for _, c := range cs {
				if !bytes.Contains(merged, []byte(c.PURL)) && !bytes.Contains(merged, []byte(strings.ReplaceAll(c.PURL, "&", `\u0026`))) {
					t.Errorf("merged document lacks %s", c.PURL)
				}
			}
			if bytes.Contains(merged, []byte("DocumentRef-")) || bytes.Contains(merged, []byte("urn:cdx:")) {
				t.Errorf("merged document still refers to other documents:\n%s", merged)
			}
			var v map[string]any
			if err := json.Unmarshal(merged, &v); err != nil {
				t.Fatal(err)
			}
			// Another image's layer document in place of this one's app layer's.
			swapped := docs(a)
			swapped[3] = b[3].Data
			if _, err := Merge(format, swapped); err == nil || !strings.Contains(err.Error(), "is not the one the image's document names") {
				t.Errorf("a swapped layer document was merged: %v", err)
			}
		})
	}
}
