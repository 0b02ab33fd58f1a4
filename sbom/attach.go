package sbom

import (
	"bytes"
	"encoding/json"
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

// Artifact returns an OCI 1.1 artifact manifest carrying doc (of media
// type artifactType) that refers to subject: pushed next to the image, a
// registry lists it among the image's referrers (go-containerregistry
// maintains the sha256-DIGEST referrers tag where the registry has no
// referrers API).
func Artifact(subject v1.Descriptor, artifactType string, doc []byte, filename string, created time.Time) (v1.Image, error) {
	h, size, err := v1.SHA256(bytes.NewReader(doc))
	if err != nil {
		return nil, err
	}
	layer := v1.Descriptor{MediaType: types.MediaType(artifactType), Digest: h, Size: size,
		Annotations: map[string]string{"org.opencontainers.image.title": filename}}
	sub := v1.Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  artifactType,
		Config:        emptyDesc,
		Layers:        []v1.Descriptor{layer},
		Subject:       &sub,
		Annotations:   map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&artifact{manifest: raw, doc: doc, docDesc: layer})
}

type artifact struct {
	manifest []byte
	doc      []byte
	docDesc  v1.Descriptor
}

func (a *artifact) RawManifest() ([]byte, error)        { return a.manifest, nil }
func (a *artifact) RawConfigFile() ([]byte, error)      { return []byte(emptyJSON), nil }
func (a *artifact) MediaType() (types.MediaType, error) { return types.OCIManifestSchema1, nil }
func (a *artifact) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h == emptyDesc.Digest {
		return &blob{b: []byte(emptyJSON), d: emptyDesc}, nil
	}
	return &blob{b: a.doc, d: a.docDesc}, nil
}

type blob struct {
	b []byte
	d v1.Descriptor
}

func (b *blob) Digest() (v1.Hash, error)            { return b.d.Digest, nil }
func (b *blob) Compressed() (io.ReadCloser, error)  { return io.NopCloser(bytes.NewReader(b.b)), nil }
func (b *blob) Size() (int64, error)                { return b.d.Size, nil }
func (b *blob) MediaType() (types.MediaType, error) { return b.d.MediaType, nil }
