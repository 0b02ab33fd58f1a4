package sbom

import (
	"bytes"
	"encoding/json"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/uuid"
)

// Media and artifact types of the documents.
const (
	SPDXType      = "application/spdx+json"
	CycloneDXType = "application/vnd.cyclonedx+json"
)

// Subject describes the image a document is about.
type Subject struct {
	Name    string // e.g. the tag, or "image"
	Digest  string // sha256:...
	Created time.Time
	Tool    string // "packer VERSION"
}

// uuid5 returns the RFC 4122 version-5 UUID of s (SHA-1 in the URL
// namespace), so a document's serial number follows from its subject.
func uuid5(s string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("urn:packer-sbom:"+s)).String()
}

func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// SPDX renders an image's complete SPDX 2.3 JSON document (Documents
// merged).
func SPDX(sub Subject, cs []Component, ls ...v1.Hash) ([]byte, error) {
	return complete(FormatSPDX, sub, cs, ls)
}

// CycloneDX renders an image's complete CycloneDX 1.6 JSON document.
func CycloneDX(sub Subject, cs []Component, ls ...v1.Hash) ([]byte, error) {
	return complete(FormatCycloneDX, sub, cs, ls)
}

func complete(format string, sub Subject, cs []Component, ls []v1.Hash) ([]byte, error) {
	files, err := Documents(format, sub, cs, ls, "sbom."+ext[format])
	if err != nil {
		return nil, err
	}
	docs := make([][]byte, len(files))
	for i, f := range files {
		docs[i] = f.Data
	}
	return Merge(format, docs)
}
