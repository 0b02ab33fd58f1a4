package sbom

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/packer-build/packer/layers"
)

func layerOf(t *testing.T, entries []layers.Entry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	if err := layers.WriteEntries(&buf, entries); err != nil {
		t.Fatal(err)
	}
	l, err := tarball.LayerFromReader(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

const dpkgStatus = `Package: libc6
Status: install ok installed
Architecture: amd64
Version: 2.41-12
Description: GNU C Library
 multi-line description

Package: removed-pkg
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2025b-4+deb13u1
`

func testImage(t *testing.T) v1.Image {
	self, err := os.ReadFile(os.Args[0]) // this test binary: a Go executable with build info
	if err != nil {
		t.Fatal(err)
	}
	base := layerOf(t, []layers.Entry{
		{Name: "/etc/os-release", Mode: 0o644, Data: []byte("ID=debian\nVERSION_ID=\"13\"\n")},
		{Name: "/var/lib/dpkg/status", Mode: 0o644, Data: []byte(dpkgStatus)},
		{Name: "/usr/lib/python3/dist-packages/oldlib-1.0.dist-info/METADATA", Mode: 0o644, Data: []byte("Metadata-Version: 2.1\nName: oldlib\nVersion: 1.0\n")},
	})
	app := layerOf(t, []layers.Entry{
		{Name: "/app/node_modules/express/package.json", Mode: 0o644, Data: []byte(`{"name":"express","version":"4.21.2"}`)},
		{Name: "/app/node_modules/express/test/fixtures/package.json", Mode: 0o644, Data: []byte(`{"name":"fixture","version":"0.0.1"}`)},
		{Name: "/app/node_modules/@types/node/package.json", Mode: 0o644, Data: []byte(`{"name":"@types/node","version":"22.1.0"}`)},
		{Name: "/app/node_modules/.package-lock.json", Mode: 0o644, Data: []byte(`{"packages":{"node_modules/express":{"integrity":"sha512-AAAA"}}}`)},
		{Name: "/opt/python/packages/Flask-3.1.0.dist-info/METADATA", Mode: 0o644, Data: []byte("Metadata-Version: 2.3\nName: Flask\nVersion: 3.1.0\n\nName: not-a-header\n")},
		{Name: "/usr/lib/python3/dist-packages/.wh.oldlib-1.0.dist-info", Mode: 0o644},
		{Name: "/app/server", Mode: 0o755, Data: self},
	})
	img, err := mutate.AppendLayers(empty.Image, base, app)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func TestScan(t *testing.T) {
	img := testImage(t)
	cs, err := Scan(t.Context(), img, nil)
	if err != nil {
		t.Fatal(err)
	}
	byPURL := map[string]Component{}
	for _, c := range cs {
		byPURL[c.PURL] = c
	}
	for _, want := range []string{
		"pkg:deb/debian/libc6@2.41-12?arch=amd64&distro=debian-13",
		"pkg:deb/debian/tzdata@2025b-4%2Bdeb13u1?arch=all&distro=debian-13", // + percent-encoded, as the purl spec and syft write it
		"pkg:npm/express@4.21.2",
		"pkg:npm/%40types/node@22.1.0",
		"pkg:pypi/flask@3.1.0",
		"pkg:golang/stdlib@" + goVersion(t),
	} {
		if _, ok := byPURL[want]; !ok {
			t.Errorf("missing %s", want)
		}
	}
	golangs := 0
	for p := range byPURL {
		if strings.HasPrefix(p, "pkg:golang/") {
			golangs++
		}
	}
	if golangs < 2 { // stdlib and the test binary's module or dependencies
		t.Errorf("Go build info: %d golang components", golangs)
	}
	for _, absent := range []string{"removed-pkg", "pkg:npm/fixture@0.0.1", "pkg:pypi/oldlib@1.0"} {
		for p := range byPURL {
			if strings.Contains(p, absent) {
				t.Errorf("%s should not be reported (%s)", absent, p)
			}
		}
	}
	if h := byPURL["pkg:npm/express@4.21.2"].SHA512; h != "000000" {
		t.Errorf("express integrity = %q, want the hex of sha512-AAAA", h)
	}
	for i := 1; i < len(cs); i++ {
		if cs[i-1].PURL >= cs[i].PURL {
			t.Fatalf("components not sorted: %s before %s", cs[i-1].PURL, cs[i].PURL)
		}
	}
}

func goVersion(t *testing.T) string {
	cs, _ := Scan(t.Context(), testImage(t), nil)
	for _, c := range cs {
		if c.Name == "stdlib" {
			if !strings.HasPrefix(c.Version, "go1.") {
				t.Errorf("stdlib version %q", c.Version)
			}
			return c.Version
		}
	}
	t.Fatal("no stdlib component")
	return ""
}

func TestDocumentsAreDeterministicAndWellFormed(t *testing.T) {
	img := testImage(t)
	cs, _ := Scan(t.Context(), img, nil)
	sub := Subject{Name: "app", Digest: "sha256:" + strings.Repeat("a", 64), Created: time.Unix(1700000000, 0), Tool: "packer test"}
	s1, _ := SPDX(sub, cs)
	s2, _ := SPDX(sub, cs)
	c1, _ := CycloneDX(sub, cs)
	c2, _ := CycloneDX(sub, cs)
	if !bytes.Equal(s1, s2) || !bytes.Equal(c1, c2) {
		t.Fatalf("documents differ between two renderings")
	}
	var spdx struct {
		SPDXVersion  string `json:"spdxVersion"`
		CreationInfo struct {
			Created string `json:"created"`
		} `json:"creationInfo"`
		Packages []struct {
			SPDXID string `json:"SPDXID"`
		} `json:"packages"`
		Relationships []struct {
			Type string `json:"relationshipType"`
		} `json:"relationships"`
	}
	if err := json.Unmarshal(s1, &spdx); err != nil {
		t.Fatal(err)
	}
	layersWithPackages := map[v1.Hash]bool{}
	for _, c := range cs {
		layersWithPackages[c.Layer] = true
	}
	n := len(layersWithPackages) // each described by a package of its own
	if n != 2 {
		t.Fatalf("packages found in %d layers, want 2 (the base's and the app's)", n)
	}
	if spdx.SPDXVersion != "SPDX-2.3" || spdx.CreationInfo.Created != "2023-11-14T22:13:20Z" || len(spdx.Packages) != len(cs)+1+n || len(spdx.Relationships) != len(cs)+1+n {
		t.Errorf("SPDX: %+v", spdx)
	}
	var cdx struct {
		SpecVersion string `json:"specVersion"`
		Components  []struct {
			PURL string `json:"purl"`
		} `json:"components"`
	}
	if err := json.Unmarshal(c1, &cdx); err != nil {
		t.Fatal(err)
	}
	if cdx.SpecVersion != "1.6" || len(cdx.Components) != len(cs)+n {
		t.Errorf("CycloneDX: %+v", cdx)
	}
	// Another image digest gives another namespace and serial number.
	sub.Digest = "sha256:" + strings.Repeat("b", 64)
	s3, _ := SPDX(sub, cs)
	if bytes.Equal(s1, s3) {
		t.Errorf("the SPDX namespace does not depend on the image")
	}
}

func TestArtifact(t *testing.T) {
	subject := v1.Descriptor{MediaType: "application/vnd.oci.image.manifest.v1+json", Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("c", 64)}, Size: 1234}
	layer := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("d", 64)}
	art, err := Artifact(subject, SPDXType, []File{{Name: "sbom.spdx.json", Data: []byte(`{"spdxVersion":"SPDX-2.3"}`)},
		{Name: "layer-dddddddddddd.spdx.json", Layer: layer, Data: []byte(`{"layer":1}`)}}, time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	m, err := art.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	if m.ArtifactType != SPDXType || m.Subject == nil || m.Subject.Digest != subject.Digest || m.Config.MediaType != "application/vnd.oci.empty.v1+json" {
		t.Errorf("manifest %+v", m)
	}
	cfg, _ := art.RawConfigFile()
	if h, _, _ := v1.SHA256(bytes.NewReader(cfg)); h != m.Config.Digest {
		t.Errorf("config digest %s, manifest says %s", h, m.Config.Digest)
	}
	ls, _ := art.Layers()
	rc, _ := ls[0].Compressed()
	var b bytes.Buffer
	b.ReadFrom(rc)
	if b.String() != `{"spdxVersion":"SPDX-2.3"}` {
		t.Errorf("document = %q", b.String())
	}
	if len(ls) != 2 || m.Layers[1].Annotations[LayerAnnotation] != layer.String() || m.Layers[0].Annotations[LayerAnnotation] != "" {
		t.Fatalf("layers %+v", m.Layers)
	}
	rc, _ = ls[1].Compressed()
	b.Reset()
	b.ReadFrom(rc)
	if b.String() != `{"layer":1}` {
		t.Errorf("layer document = %q", b.String())
	}
}

// A store with the SBOM Tee scans each layer as it writes it: the image's
// scan then needs neither the layer's blob nor a second pass over it, and
// finds what a scan of the blob finds.
func TestTeeScansLayersAsTheyAreWritten(t *testing.T) {
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	store, err := layers.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store.Tee = Tee(store)
	l, _, err := store.FromEntries(t.Context(), []layers.Entry{
		{Name: "/etc/os-release", Mode: 0o644, Data: []byte("ID=debian\nVERSION_ID=\"13\"\n")},
		{Name: "/var/lib/dpkg/status", Mode: 0o644, Data: []byte(dpkgStatus)},
		{Name: "/app/server", Mode: 0o755, Data: self},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Scan(t.Context(), img, nil) // from the blob
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 4 {
		t.Fatalf("scan of the blob found %d components", len(want))
	}
	if _, ok := store.ReadMeta(scanKey(l.Desc.Digest)); !ok {
		t.Fatal("the Tee kept no scan of the layer")
	}
	if err := store.Remove(l.Desc.Digest); err != nil {
		t.Fatal(err)
	}
	got, err := Scan(t.Context(), img, store) // from the Tee's record: the blob is gone
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scan from the Tee:\n%v\nfrom the blob:\n%v", got, want)
	}
}
