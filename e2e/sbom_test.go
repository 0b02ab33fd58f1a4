package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/packer-build/packer/internal/testutil"
)

// TestSBOMReferrers: pushed to a registry without the referrers API
// (distribution 2.8), the SPDX and CycloneDX documents are attached
// through the referrers tag schema and `packer sbom` reads them back; they
// list the base's Debian packages and the production npm packages, not
// the dev ones; two builds from different directories give byte-identical
// documents.
func TestSBOMReferrers(t *testing.T) {
	testutil.NeedTool(t, "npm", "install Node.js")
	base := testutil.DebianBase(t)
	host := startRegistry(t, "")
	dir := testutil.CopyFixture(t, "node-express")
	ref := host + "/team/express:v1"
	sbomDir := filepath.Join(t.TempDir(), "sbom")
	out := mustPacker(t, nodeEnv(t), "build", dir, "--base", base, "--push", "-t", ref, "--sbom-dir", sbomDir)
	digest := out[strings.Index(out, "@")+1:]

	spdx := mustPacker(t, nil, "sbom", ref)
	cdx := mustPacker(t, nil, "sbom", "--format", "cyclonedx", ref)
	for _, want := range []string{"pkg:npm/express@4.22.3", "pkg:deb/debian/nodejs@", "pkg:deb/debian/libc6@", `"spdxVersion": "SPDX-2.3"`, digest} {
		if !strings.Contains(spdx, want) {
			t.Errorf("SPDX lacks %q", want)
		}
	}
	if !strings.Contains(cdx, `"specVersion": "1.6"`) || !strings.Contains(cdx, "pkg:npm/express@4.22.3") {
		t.Errorf("CycloneDX:\n%.400s", cdx)
	}
	if strings.Contains(spdx, "@types/express") || strings.Contains(spdx, "%40types/express") {
		t.Errorf("a devDependency is in the SBOM")
	}
	file, _ := os.ReadFile(filepath.Join(sbomDir, "sbom.spdx.json"))
	if string(bytes.TrimSpace(file)) != strings.TrimSpace(spdx) {
		t.Errorf("--sbom-dir file differs from the attached SBOM")
	}

	d, _ := name.NewDigest(host+"/team/express@"+digest, name.Insecure)
	idx, err := remote.Referrers(d)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	types := map[string]bool{}
	for _, m := range im.Manifests {
		types[m.ArtifactType] = true
	}
	if !types["application/spdx+json"] || !types["application/vnd.cyclonedx+json"] {
		t.Errorf("referrers = %+v", im.Manifests)
	}

	// The documents validate: SPDX with the SPDX reference tools, CycloneDX
	// against its 1.6 JSON schema. The complete ones, and the attached
	// split ones (the image's document with its external references, each
	// layer's).
	validateSBOMs(t, filepath.Join(sbomDir, "sbom.spdx.json"), filepath.Join(sbomDir, "sbom.cdx.json"))
	attached := map[string][]string{}
	for _, m := range im.Manifests {
		art, err := remote.Image(d.Context().Digest(m.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		ls, _ := art.Layers()
		for i, l := range ls {
			rc, _ := l.Compressed()
			b, _ := io.ReadAll(rc)
			rc.Close()
			f := filepath.Join(t.TempDir(), fmt.Sprintf("%d.json", i))
			os.WriteFile(f, b, 0o644)
			attached[m.ArtifactType] = append(attached[m.ArtifactType], f)
		}
	}
	spdxFiles, cdxFiles := attached["application/spdx+json"], attached["application/vnd.cyclonedx+json"]
	if len(spdxFiles) < 3 || len(spdxFiles) != len(cdxFiles) {
		t.Fatalf("attached documents: %d SPDX, %d CycloneDX; want the image's and ≥ 2 layers' of each", len(spdxFiles), len(cdxFiles))
	}
	for i := range spdxFiles {
		validateSBOMs(t, spdxFiles[i], cdxFiles[i])
	}

	// Same inputs elsewhere: byte-identical SBOMs.
	dir2 := testutil.CopyFixture(t, "node-express")
	sbomDir2 := filepath.Join(t.TempDir(), "sbom2")
	mustPacker(t, nodeEnv(t), "build", dir2, "--base", base, "-o", "oci:"+filepath.Join(t.TempDir(), "l"), "-t", host+"/team/express:v1", "--sbom-dir", sbomDir2)
	for _, f := range []string{"sbom.spdx.json", "sbom.cdx.json"} {
		a, _ := os.ReadFile(filepath.Join(sbomDir, f))
		b, _ := os.ReadFile(filepath.Join(sbomDir2, f))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("%s differs between two builds", f)
		}
	}
}

// TestSBOMPerPlatformAndGoModules: each image of an index gets its own
// SBOM, and a Go binary's modules (from its build info) are listed.
func TestSBOMPerPlatformAndGoModules(t *testing.T) {
	host := startRegistry(t, "")
	dir := testutil.CopyFixture(t, "go-vendored")
	ref := host + "/team/vendored:v1"
	mustPacker(t, cacheEnv(t), "build", dir, "--push", "--platform", "linux/amd64,linux/arm64", "-t", ref)
	r, _ := name.ParseReference(ref, name.Insecure)
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := idx.IndexManifest()
	for _, m := range im.Manifests {
		refs, err := remote.Referrers(r.Context().Digest(m.Digest.String()))
		if err != nil {
			t.Fatal(err)
		}
		rim, _ := refs.IndexManifest()
		if len(rim.Manifests) != 2 {
			t.Errorf("%s has %d referrers, want SPDX and CycloneDX", m.Platform, len(rim.Manifests))
		}
		spdx := mustPacker(t, nil, "sbom", "--platform", m.Platform.String(), ref)
		if !strings.Contains(spdx, "pkg:golang/github.com/google/uuid@v1.6.0") || !strings.Contains(spdx, m.Digest.String()) {
			t.Errorf("%s SBOM lacks the uuid module or its image digest", m.Platform)
		}
	}
}

func validateSBOMs(t *testing.T, spdx, cdx string) {
	t.Helper()
	py := hostPython(t)
	script, _ := filepath.Abs(filepath.Join("testdata", "validate_sbom.py"))
	cmd := exec.Command(py, script, spdx, cdx)
	cmd.Dir = os.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "ModuleNotFoundError") {
		if testutil.InCI() {
			t.Fatalf("SBOM validators missing under CI (scripts/test-deps.sh installs them): %s", out)
		}
		t.Skipf("SKIP: SBOM validators not installed (python3 -m pip install 'cyclonedx-python-lib[json-validation]' spdx-tools)")
	}
	if err != nil {
		t.Errorf("SBOM validation failed: %v\n%s", err, out)
	}
}

// TestSyftFindsNothingMore: syft, run on the same images, finds no
// application package (npm, Python, Go module) that packer's SBOM lacks.
func TestSyftFindsNothingMore(t *testing.T) {
	syft := testutil.NeedTool(t, "syft", "scripts/tools.sh installs it with go install")
	testutil.NeedTool(t, "npm", "install Node.js")
	hostPython(t)
	base := testutil.DebianBase(t)
	for _, tc := range []struct {
		fixture string
		args    []string
	}{
		{"node-express", []string{"--base", base}},
		{"py-flask", []string{"--base", base}},
		{"go-vendored", nil},
	} {
		t.Run(tc.fixture, func(t *testing.T) {
			dir := testutil.CopyFixture(t, tc.fixture)
			out := filepath.Join(t.TempDir(), "layout")
			sbomDir := filepath.Join(t.TempDir(), "sbom")
			mustPacker(t, nodeEnv(t), append([]string{"build", dir, "-o", "oci:" + out, "-t", "app:v1", "--sbom-dir", sbomDir}, tc.args...)...)
			raw := runOut(t, syft, "-q", "oci-dir:"+out, "-o", "json")
			var found struct {
				Artifacts []struct {
					Name, Version, Type string
					Locations           []struct{ Path string }
				}
			}
			if err := json.Unmarshal([]byte(raw), &found); err != nil {
				t.Fatalf("syft output: %v", err)
			}
			var spdx struct {
				Packages []struct {
					Name        string `json:"name"`
					VersionInfo string `json:"versionInfo"`
				} `json:"packages"`
			}
			b, _ := os.ReadFile(filepath.Join(sbomDir, "sbom.spdx.json"))
			json.Unmarshal(b, &spdx)
			// Python names compare normalized (PEP 503: Flask = flask); a
			// version syft cannot tell (UNKNOWN, for a module built without
			// VCS stamping, "(devel)" in Go's build info) compares by name.
			norm := func(n string) string { return strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(n)) }
			ours := map[string]bool{}
			for _, p := range spdx.Packages {
				ours[norm(p.Name)+"@"+p.VersionInfo] = true
				ours[norm(p.Name)+"@?"] = true
			}
			var missing []string
			apps := 0
			for _, a := range found.Artifacts {
				if a.Type != "npm" && a.Type != "python" && a.Type != "go-module" {
					continue
				}
				apps++
				v := a.Version
				if v == "UNKNOWN" {
					v = "?"
				}
				if !ours[norm(a.Name)+"@"+v] {
					where := ""
					if len(a.Locations) > 0 {
						where = a.Locations[0].Path
					}
					missing = append(missing, fmt.Sprintf("%s %s@%s (%s)", a.Type, a.Name, a.Version, where))
				}
			}
			if apps == 0 {
				t.Fatalf("syft found no application package at all; the comparison would prove nothing")
			}
			if len(missing) > 0 {
				t.Errorf("syft found %d application packages that packer's SBOM lacks:\n%s", len(missing), strings.Join(missing, "\n"))
			} else {
				t.Logf("syft: %d application packages, all in packer's SBOM", apps)
			}
		})
	}
}
