package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// EmptyJSON is the OCI empty descriptor's content ("{}").
const emptyJSON = "{}"

var emptyDesc = v1.Descriptor{
	MediaType: "application/vnd.oci.empty.v1+json",
	Digest:    v1.Hash{Algorithm: "sha256", Hex: "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
	Size:      2,
	Data:      []byte(emptyJSON),
}

// Artifact returns an OCI 1.1 artifact manifest carrying docs (of media
// type artifactType, the image's document first, then its layers', see
// Documents) that refers to subject: pushed next to the image, a registry
// lists it among the image's referrers (go-containerregistry maintains
// the sha256-DIGEST referrers tag where the registry has no referrers
// API).
func Artifact(subject v1.Descriptor, artifactType string, docs []File, created time.Time) (v1.Image, error) {
	a := &artifact{blobs: map[v1.Hash][]byte{}}
	var ls []v1.Descriptor
	for _, f := range docs {
		h, size, err := v1.SHA256(bytes.NewReader(f.Data))
		if err != nil {
			return nil, err
		}
		ann := map[string]string{"org.opencontainers.image.title": f.Name}
		if f.Layer.Hex != "" {
			ann[LayerAnnotation] = f.Layer.String()
		}
		ls = append(ls, v1.Descriptor{MediaType: types.MediaType(artifactType), Digest: h, Size: size, Annotations: ann})
		a.blobs[h] = f.Data
	}
	sub := v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        emptyDesc,
		Layers:        ls,
		Subject:       &sub,
		Annotations:   map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	a.manifest = raw
	a.descs = ls
	return partial.CompressedToImage(a)
}

// LayerAnnotation, on a layer document's descriptor, names the image
// layer it describes.
const LayerAnnotation = "dev.packer.sbom.layer"

type artifact struct {
	manifest []byte
	blobs    map[v1.Hash][]byte
	descs    []v1.Descriptor
}

func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) RawConfigFile() ([]byte, error)      { return []byte(emptyJSON), nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == emptyDesc.Digest {
		return &blob{b: []byte(emptyJSON), d: emptyDesc}, nil
	}
	for _, d := range a.descs {
		if d.Digest == h {
			return &blob{b: a.blobs[h], d: d}, nil
		}
	}
	return nil, fmt.Errorf("the SBOM artifact has no blob %s", h)
}

type blob struct {
	b []byte
	d v1.Descriptor
}

func (b *blob) Digest() (v1.Hash, error)            { return b.d.Digest, nil }
func (b *blob) Compressed() (io.ReadCloser, error)  { return io.NopCloser(bytes.NewReader(b.b)), nil }
func (b *blob) Size() (int64, error)                { return b.d.Size, nil }
func (b *blob) MediaType() (types.MediaType, error) { return b.d.MediaType, nil }
