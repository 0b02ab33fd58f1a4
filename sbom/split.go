package sbom

import (
	"crypto/sha1" //nolint:gosec // SPDX 2.3 external document references are checksummed with SHA1
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// An image's SBOM is split by layer, so a rebuild that changes one layer
// pushes only that layer's share and a small image document again: the
// base's thousands of OS packages and the dependency tree are described
// in documents whose bytes depend only on those layers' packages, so the
// registry already has them (same digest) and nothing is uploaded.
//
// The image's document comes first and names each layer's document by
// checksum: SPDX through externalDocumentRefs (and relationships to
// DocumentRef-…:SPDXRef-Layer-…), CycloneDX through BOM-Link external
// references (urn:cdx:SERIAL/1 with a SHA-256). Merge joins them into the
// one complete document `packer sbom` prints and --sbom-dir holds.

// File is one SBOM document.
type File struct {
	// Name is its file name ("sbom.spdx.json", "layer-HEX12.spdx.json").
	Name string
	// Layer is the layer it describes; zero for the image's document.
	Layer v1.Hash
	Data  []byte
}

// Formats are the document formats Documents and Merge know.
const (
	FormatSPDX      = "spdx"
	FormatCycloneDX = "cyclonedx"
)

// ext is each format's file extension.
var ext = map[string]string{FormatSPDX: "spdx.json", FormatCycloneDX: "cdx.json"}

// layerPart is the components found in one layer, in image order.
type layerPart struct {
	layer v1.Hash
	comps []Component
}

// byLayer groups components by Layer, in the order of the image's layers
// (ls); components with no layer (as unit tests build them) join the
// last group. Layers holding no package get no document.
func byLayer(cs []Component, ls []v1.Hash) []layerPart {
	idx := map[v1.Hash]int{}
	var parts []layerPart
	for _, l := range ls {
		if _, ok := idx[l]; !ok {
			idx[l] = len(parts)
			parts = append(parts, layerPart{layer: l})
		}
	}
	for _, c := range cs {
		i, ok := idx[c.Layer]
		if !ok {
			idx[c.Layer] = len(parts)
			i = len(parts)
			parts = append(parts, layerPart{layer: c.Layer})
		}
		parts[i].comps = append(parts[i].comps, c)
	}
	var out []layerPart
	for _, p := range parts {
		if len(p.comps) > 0 {
			out = append(out, p)
		}
	}
	return out
}

// short names a layer in identifiers: the first 12 hex digits of its
// digest ("none" for components without one).
func short(h v1.Hash) string {
	if len(h.Hex) < 12 {
		return "none"
	}
	return h.Hex[:12]
}

// Documents renders the image's SBOM in format as the image's document
// (first; Name is name, e.g. "sbom.spdx.json") and one document per layer
// that holds packages. ls are the image's layer digests, bottom up.
func Documents(format string, sub Subject, cs []Component, ls []v1.Hash, name string) ([]File, error) {
	parts := byLayer(cs, ls)
	var files []File
	switch format {
	case FormatSPDX:
		var refs []spdxDocRef
		for _, p := range parts {
			doc, ns, err := spdxLayer(sub, p)
			if err != nil {
				return nil, err
			}
			sum := sha1.Sum(doc) //nolint:gosec // the checksum SPDX 2.3 defines for document references
			refs = append(refs, spdxDocRef{ID: "DocumentRef-Layer-" + short(p.layer), Namespace: ns,
				Checksum: spdxChecksum{"SHA1", hex.EncodeToString(sum[:])}, Element: "SPDXRef-Layer-" + short(p.layer)})
			files = append(files, File{Name: "layer-" + short(p.layer) + "." + ext[format], Layer: p.layer, Data: doc})
		}
		top, err := spdxImage(sub, refs)
		if err != nil {
			return nil, err
		}
		return append([]File{{Name: name, Data: top}}, files...), nil
	case FormatCycloneDX:
		var refs []cdxLayerRef
		for _, p := range parts {
			doc, serial, err := cdxLayer(sub, p)
			if err != nil {
				return nil, err
			}
			sum := sha256.Sum256(doc)
			refs = append(refs, cdxLayerRef{layer: p.layer, serial: serial, sha256: hex.EncodeToString(sum[:])})
			files = append(files, File{Name: "layer-" + short(p.layer) + "." + ext[format], Layer: p.layer, Data: doc})
		}
		top, err := cdxImage(sub, refs)
		if err != nil {
			return nil, err
		}
		return append([]File{{Name: name, Data: top}}, files...), nil
	}
	return nil, fmt.Errorf("unknown SBOM format %q; use spdx or cyclonedx", format)
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxDocRef struct {
	ID        string       `json:"externalDocumentId"`
	Namespace string       `json:"spdxDocument"`
	Checksum  spdxChecksum `json:"checksum"`
	Element   string       `json:"-"`
}

type spdxRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxPkg struct {
	SPDXID           string         `json:"SPDXID"`
	Name             string         `json:"name"`
	VersionInfo      string         `json:"versionInfo,omitempty"`
	DownloadLocation string         `json:"downloadLocation"`
	FilesAnalyzed    bool           `json:"filesAnalyzed"`
	LicenseConcluded string         `json:"licenseConcluded"`
	LicenseDeclared  string         `json:"licenseDeclared"`
	CopyrightText    string         `json:"copyrightText"`
	Checksums        []spdxChecksum `json:"checksums,omitempty"`
	ExternalRefs     []spdxRef      `json:"externalRefs,omitempty"`
	PrimaryPurpose   string         `json:"primaryPackagePurpose,omitempty"`
	SourceInfo       string         `json:"sourceInfo,omitempty"`
}

type spdxRel struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

type spdxDoc struct {
	Version      string         `json:"spdxVersion"`
	DataLicense  string         `json:"dataLicense"`
	SPDXID       string         `json:"SPDXID"`
	Name         string         `json:"name"`
	Namespace    string         `json:"documentNamespace"`
	CreationInfo map[string]any `json:"creationInfo"`
	DocRefs      []spdxDocRef   `json:"externalDocumentRefs,omitempty"`
	Packages     []spdxPkg      `json:"packages"`
	Rels         []spdxRel      `json:"relationships"`
}

func spdxHeader(sub Subject, name string) spdxDoc {
	return spdxDoc{Version: "SPDX-2.3", DataLicense: "CC0-1.0", SPDXID: "SPDXRef-DOCUMENT", Name: name,
		CreationInfo: map[string]any{"created": sub.Created.UTC().Format(time.RFC3339), "creators": []string{"Tool: " + sub.Tool}}}
}

func noAssertion(p spdxPkg) spdxPkg {
	p.DownloadLocation, p.LicenseConcluded, p.LicenseDeclared, p.CopyrightText = "NOASSERTION", "NOASSERTION", "NOASSERTION", "NOASSERTION"
	return p
}

// spdxLayer is one layer's document; its namespace follows from its
// content, so equal packages give equal bytes whatever image holds them.
func spdxLayer(sub Subject, p layerPart) ([]byte, string, error) {
	id := short(p.layer)
	doc := spdxHeader(sub, "layer "+p.layer.String())
	layer := noAssertion(spdxPkg{SPDXID: "SPDXRef-Layer-" + id, Name: p.layer.String(), PrimaryPurpose: "ARCHIVE"})
	doc.Packages = []spdxPkg{layer}
	doc.Rels = []spdxRel{{"SPDXRef-DOCUMENT", "DESCRIBES", layer.SPDXID}}
	for i, c := range p.comps {
		pk := noAssertion(spdxPkg{SPDXID: fmt.Sprintf("SPDXRef-Package-%s-%s-%d", id, c.Type, i), Name: c.Name, VersionInfo: c.Version,
			ExternalRefs: []spdxRef{{"PACKAGE-MANAGER", "purl", c.PURL}}, SourceInfo: "found at /" + c.Path, PrimaryPurpose: "LIBRARY"})
		if c.SHA512 != "" {
			pk.Checksums = []spdxChecksum{{"SHA512", c.SHA512}}
		}
		doc.Packages = append(doc.Packages, pk)
		doc.Rels = append(doc.Rels, spdxRel{layer.SPDXID, "CONTAINS", pk.SPDXID})
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(body)
	doc.Namespace = "urn:uuid:" + uuid5("spdx-layer:"+hex.EncodeToString(sum[:]))
	b, err := marshal(doc)
	return b, doc.Namespace, err
}

func spdxImage(sub Subject, refs []spdxDocRef) ([]byte, error) {
	doc := spdxHeader(sub, sub.Name+"@"+sub.Digest)
	doc.Namespace = "urn:uuid:" + uuid5("spdx:"+sub.Digest)
	doc.DocRefs = refs
	doc.Packages = []spdxPkg{noAssertion(spdxPkg{SPDXID: "SPDXRef-Image", Name: sub.Name, VersionInfo: sub.Digest, PrimaryPurpose: "CONTAINER"})}
	doc.Rels = []spdxRel{{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"}}
	for _, r := range refs {
		doc.Rels = append(doc.Rels, spdxRel{"SPDXRef-Image", "CONTAINS", r.ID + ":" + r.Element})
	}
	return marshal(doc)
}

type cdxHash struct {
	Alg     string `json:"alg"`
	Content string `json:"content"`
}

type cdxProp struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

type cdxExtRef struct {
	Type    string    `json:"type"`
	URL     string    `json:"url"`
	Comment string    `json:"comment,omitempty"`
	Hashes  []cdxHash `json:"hashes,omitempty"`
}

type cdxComp struct {
	Type         string      `json:"type"`
	BOMRef       string      `json:"bom-ref"`
	Name         string      `json:"name"`
	Version      string      `json:"version,omitempty"`
	PURL         string      `json:"purl,omitempty"`
	Hashes       []cdxHash   `json:"hashes,omitempty"`
	ExternalRefs []cdxExtRef `json:"externalReferences,omitempty"`
	Properties   []cdxProp   `json:"properties,omitempty"`
}

type cdxDoc struct {
	Format     string         `json:"bomFormat"`
	Spec       string         `json:"specVersion"`
	Serial     string         `json:"serialNumber"`
	Version    int            `json:"version"`
	Metadata   map[string]any `json:"metadata"`
	Components []cdxComp      `json:"components"`
}

type cdxLayerRef struct {
	layer          v1.Hash
	serial, sha256 string
}

func cdxHeader(sub Subject, component cdxComp) cdxDoc {
	name, version, _ := strings.Cut(sub.Tool, " ")
	return cdxDoc{Format: "CycloneDX", Spec: "1.6", Version: 1, Components: []cdxComp{},
		Metadata: map[string]any{
			"timestamp": sub.Created.UTC().Format(time.RFC3339),
			"tools":     map[string]any{"components": []map[string]string{{"type": "application", "name": name, "version": version}}},
			"component": component,
		}}
}

func layerComp(h v1.Hash) cdxComp {
	return cdxComp{Type: "file", BOMRef: "layer-" + short(h), Name: h.String()}
}

func cdxLayer(sub Subject, p layerPart) ([]byte, string, error) {
	doc := cdxHeader(sub, layerComp(p.layer))
	for _, c := range p.comps {
		cc := cdxComp{Type: "library", BOMRef: c.PURL, Name: c.Name, Version: c.Version, PURL: c.PURL,
			Properties: []cdxProp{{"packer:path", "/" + c.Path}}}
		if c.SHA512 != "" {
			cc.Hashes = []cdxHash{{"SHA-512", c.SHA512}}
		}
		doc.Components = append(doc.Components, cc)
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(body)
	serial := uuid5("cyclonedx-layer:" + hex.EncodeToString(sum[:]))
	doc.Serial = "urn:uuid:" + serial
	b, err := marshal(doc)
	return b, serial, err
}

func cdxImage(sub Subject, refs []cdxLayerRef) ([]byte, error) {
	doc := cdxHeader(sub, cdxComp{Type: "container", BOMRef: "image", Name: sub.Name, Version: sub.Digest})
	doc.Serial = "urn:uuid:" + uuid5("cyclonedx:"+sub.Digest)
	for _, r := range refs {
		c := layerComp(r.layer)
		c.ExternalRefs = []cdxExtRef{{Type: "bom", URL: "urn:cdx:" + r.serial + "/1", Comment: "the packages in this layer",
			Hashes: []cdxHash{{"SHA-256", r.sha256}}}}
		doc.Components = append(doc.Components, c)
	}
	return marshal(doc)
}

// Merge joins an image's documents, as Documents returns them (the
// image's first), into one complete document: every layer's packages
// under the image, no external references. Each layer document must match
// the checksum the image's document gives it. A single document is
// returned as it is.
func Merge(format string, docs [][]byte) ([]byte, error) {
	if len(docs) == 0 {
		return nil, fmt.Errorf("no SBOM document to merge")
	}
	if len(docs) == 1 {
		return docs[0], nil
	}
	switch format {
	case FormatSPDX:
		var top spdxDoc
		if err := json.Unmarshal(docs[0], &top); err != nil {
			return nil, fmt.Errorf("reading the image's SPDX document: %w", err)
		}
		byNS := map[string]spdxDocRef{}
		for _, r := range top.DocRefs {
			byNS[r.Namespace] = r
		}
		out := top
		out.DocRefs = nil
		out.Namespace = "urn:uuid:" + uuid5("merged:"+top.Namespace)
		out.Rels = nil
		for _, r := range top.Rels {
			if _, el, ok := strings.Cut(r.Related, ":"); ok && strings.HasPrefix(r.Related, "DocumentRef-") {
				r.Related = el
			}
			out.Rels = append(out.Rels, r)
		}
		for i, b := range docs[1:] {
			var part spdxDoc
			if err := json.Unmarshal(b, &part); err != nil {
				return nil, fmt.Errorf("reading layer SPDX document %d: %w", i+1, err)
			}
			ref, ok := byNS[part.Namespace]
			sum := sha1.Sum(b) //nolint:gosec // SPDX's document reference checksum
			if !ok || ref.Checksum.Value != hex.EncodeToString(sum[:]) {
				return nil, fmt.Errorf("layer SPDX document %s is not the one the image's document names (checksum or namespace differ)", part.Namespace)
			}
			out.Packages = append(out.Packages, part.Packages...)
			for _, r := range part.Rels {
				if r.Element != "SPDXRef-DOCUMENT" {
					out.Rels = append(out.Rels, r)
				}
			}
		}
		return marshal(out)
	case FormatCycloneDX:
		var top cdxDoc
		if err := json.Unmarshal(docs[0], &top); err != nil {
			return nil, fmt.Errorf("reading the image's CycloneDX document: %w", err)
		}
		bySerial := map[string]string{}
		out := top
		out.Components = nil
		for _, c := range top.Components {
			for _, r := range c.ExternalRefs {
				if r.Type == "bom" && len(r.Hashes) == 1 {
					bySerial[strings.TrimSuffix(strings.TrimPrefix(r.URL, "urn:cdx:"), "/1")] = r.Hashes[0].Content
				}
			}
			c.ExternalRefs = nil
			out.Components = append(out.Components, c)
		}
		out.Serial = "urn:uuid:" + uuid5("merged:"+top.Serial)
		for i, b := range docs[1:] {
			var part cdxDoc
			if err := json.Unmarshal(b, &part); err != nil {
				return nil, fmt.Errorf("reading layer CycloneDX document %d: %w", i+1, err)
			}
			sum := sha256.Sum256(b)
			if bySerial[strings.TrimPrefix(part.Serial, "urn:uuid:")] != hex.EncodeToString(sum[:]) {
				return nil, fmt.Errorf("layer CycloneDX document %s is not the one the image's document names (hash or serial differ)", part.Serial)
			}
			out.Components = append(out.Components, part.Components...)
		}
		return marshal(out)
	}
	return nil, fmt.Errorf("unknown SBOM format %q; use spdx or cyclonedx", format)
}
