package sbom

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

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

// SPDX renders an SPDX 2.3 JSON document.
func SPDX(sub Subject, cs []Component) ([]byte, error) {
	type ref struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	}
	type checksum struct {
		Algorithm string `json:"algorithm"`
		Value     string `json:"checksumValue"`
	}
	type pkg struct {
		SPDXID           string     `json:"SPDXID"`
		Name             string     `json:"name"`
		VersionInfo      string     `json:"versionInfo,omitempty"`
		DownloadLocation string     `json:"downloadLocation"`
		FilesAnalyzed    bool       `json:"filesAnalyzed"`
		LicenseConcluded string     `json:"licenseConcluded"`
		LicenseDeclared  string     `json:"licenseDeclared"`
		CopyrightText    string     `json:"copyrightText"`
		Checksums        []checksum `json:"checksums,omitempty"`
		ExternalRefs     []ref      `json:"externalRefs,omitempty"`
		PrimaryPurpose   string     `json:"primaryPackagePurpose,omitempty"`
		SourceInfo       string     `json:"sourceInfo,omitempty"`
	}
	type rel struct {
		Element string `json:"spdxElementId"`
		Type    string `json:"relationshipType"`
		Related string `json:"relatedSpdxElement"`
	}
	root := pkg{SPDXID: "SPDXRef-Image", Name: sub.Name, VersionInfo: sub.Digest, DownloadLocation: "NOASSERTION",
		LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION", PrimaryPurpose: "CONTAINER"}
	pkgs := []pkg{root}
	rels := []rel{{"SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"}}
	for i, c := range cs {
		p := pkg{SPDXID: fmt.Sprintf("SPDXRef-Package-%s-%d", c.Type, i), Name: c.Name, VersionInfo: c.Version, DownloadLocation: "NOASSERTION",
			LicenseConcluded: "NOASSERTION", LicenseDeclared: "NOASSERTION", CopyrightText: "NOASSERTION",
			ExternalRefs: []ref{{"PACKAGE-MANAGER", "purl", c.PURL}}, SourceInfo: "found at /" + c.Path, PrimaryPurpose: "LIBRARY"}
		if c.SHA512 != "" {
			p.Checksums = []checksum{{"SHA512", c.SHA512}}
		}
		pkgs = append(pkgs, p)
		rels = append(rels, rel{"SPDXRef-Image", "CONTAINS", p.SPDXID})
	}
	doc := map[string]any{
		"spdxVersion":       "SPDX-2.3",
		"dataLicense":       "CC0-1.0",
		"SPDXID":            "SPDXRef-DOCUMENT",
		"name":              sub.Name + "@" + sub.Digest,
		"documentNamespace": "urn:uuid:" + uuid5("spdx:"+sub.Digest),
		"creationInfo": map[string]any{
			"created":  sub.Created.UTC().Format(time.RFC3339),
			"creators": []string{"Tool: " + sub.Tool},
		},
		"packages":      pkgs,
		"relationships": rels,
	}
	return marshal(doc)
}

// CycloneDX renders a CycloneDX 1.6 JSON document.
func CycloneDX(sub Subject, cs []Component) ([]byte, error) {
	type hash struct {
		Alg     string `json:"alg"`
		Content string `json:"content"`
	}
	type prop struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	}
	type comp struct {
		Type       string `json:"type"`
		BOMRef     string `json:"bom-ref"`
		Name       string `json:"name"`
		Version    string `json:"version,omitempty"`
		PURL       string `json:"purl,omitempty"`
		Hashes     []hash `json:"hashes,omitempty"`
		Properties []prop `json:"properties,omitempty"`
	}
	var comps []comp
	for _, c := range cs {
		cc := comp{Type: "library", BOMRef: c.PURL, Name: c.Name, Version: c.Version, PURL: c.PURL,
			Properties: []prop{{"packer:path", "/" + c.Path}}}
		if c.SHA512 != "" {
			cc.Hashes = []hash{{"SHA-512", c.SHA512}}
		}
		comps = append(comps, cc)
	}
	if comps == nil {
		comps = []comp{}
	}
	tool := sub.Tool
	name, version := tool, ""
	if i := bytes.IndexByte([]byte(tool), ' '); i > 0 {
		name, version = tool[:i], tool[i+1:]
	}
	doc := map[string]any{
		"bomFormat":    "CycloneDX",
		"specVersion":  "1.6",
		"serialNumber": "urn:uuid:" + uuid5("cyclonedx:"+sub.Digest),
		"version":      1,
		"metadata": map[string]any{
			"timestamp": sub.Created.UTC().Format(time.RFC3339),
			"tools":     map[string]any{"components": []map[string]string{{"type": "application", "name": name, "version": version}}},
			"component": map[string]string{"type": "container", "bom-ref": "image", "name": sub.Name, "version": sub.Digest},
		},
		"components": comps,
	}
	return marshal(doc)
}
