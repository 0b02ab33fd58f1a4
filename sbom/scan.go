// Package sbom builds SPDX 2.3 and CycloneDX 1.6 documents from what is in
// an image: the base's OS packages (dpkg status and status.d, apk's
// installed database), npm packages in node_modules (with the integrity
// hashes npm recorded), Python distributions (*.dist-info/METADATA) and Go
// modules (the build info of Go binaries). Documents are deterministic:
// sorted, timestamped with the image's creation time.
package sbom

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"path"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/package-url/packageurl-go"

	"github.com/packer-build/packer/layers"
)

// Component is one package found in the image.
type Component struct {
	Type    string // "deb", "apk", "npm", "pypi", "golang"
	Name    string
	Version string
	PURL    string
	// SHA512 is a hex digest when the package manager recorded one.
	SHA512 string
	// Path is where the package was found (first occurrence).
	Path string
	// Layer is the digest of the layer holding that file (the topmost
	// one, where several do): the SBOM is split by it (see Split).
	Layer v1.Hash
}

var (
	npmPkgRe = regexp.MustCompile(`(^|/)package\.json$`)
	distRe   = regexp.MustCompile(`(^|/)([^/]+)\.dist-info/METADATA$`)
)

// Cache keeps per-layer scan results (layers.Store implements it), so a
// rebuild does not decompress the base again.
type Cache interface {
	ReadMeta(key string) ([]byte, bool)
	WriteMeta(key string, b []byte) error
}

type layerScan struct {
	Files    map[string][]byte `json:"files"`
	Whiteout []string          `json:"whiteouts"`
}

// Scan reads the image's layers, bottom up, and returns its packages.
// Files deleted by a later layer (whiteouts) are not reported. cache may
// be nil.
func Scan(ctx context.Context, img v1.Image, cache Cache) ([]Component, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{}   // path → content, for files of interest
	origin := map[string]v1.Hash{} // path → the layer it came from
	for _, l := range ls {
		ly, err := scanCached(ctx, l, cache)
		if err != nil {
			return nil, err
		}
		ld, err := l.Digest()
		if err != nil {
			return nil, err
		}
		for _, gone := range ly.Whiteout {
			for p := range files {
				if p == gone || strings.HasPrefix(p, gone+"/") || strings.TrimSuffix(p, "\x00go") == gone {
					delete(files, p)
				}
			}
		}
		for p, b := range ly.Files {
			files[p] = b
			origin[p] = ld
		}
	}
	var out []Component
	distro := osRelease(files["etc/os-release"], files["usr/lib/os-release"])
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	integrity := npmIntegrity(files)
	for _, p := range paths {
		for _, c := range catalogers {
			if c.match(p) {
				for _, comp := range c.read(files[p], p, scanContext{distro: distro, npmIntegrity: integrity}) {
					comp.Layer = origin[p]
					out = append(out, comp)
				}
				break
			}
		}
	}
	return dedupe(out), nil
}

func interesting(name string) bool {
	if name == "etc/os-release" || name == "usr/lib/os-release" || strings.HasSuffix(name, "node_modules/.package-lock.json") {
		return true
	}
	for _, c := range catalogers {
		if c.match(name) {
			return true
		}
	}
	return false
}

// scanContext is what catalogers share: the distribution (for OS package
// URLs) and npm's recorded integrity hashes.
type scanContext struct {
	distro       distroInfo
	npmIntegrity map[string]string
}

// cataloger finds one ecosystem's packages among an image's files. Each
// ecosystem a provider builds for has one here (TestEveryProviderHasACataloger
// checks), so a new language cannot silently drop out of the SBOM.
type cataloger struct {
	// Ecosystem is the package type: "deb", "apk", "npm", "pypi", "golang".
	Ecosystem string
	match     func(path string) bool
	read      func(b []byte, path string, sc scanContext) []Component
}

func one(c Component, ok bool) []Component {
	if !ok {
		return nil
	}
	return []Component{c}
}

var catalogers = []cataloger{
	{"deb", func(p string) bool {
		return p == "var/lib/dpkg/status" || strings.HasPrefix(p, "var/lib/dpkg/status.d/")
	},
		func(b []byte, p string, sc scanContext) []Component { return dpkg(b, sc.distro, p) }},
	{"apk", func(p string) bool { return p == "lib/apk/db/installed" },
		func(b []byte, p string, sc scanContext) []Component { return apk(b, sc.distro, p) }},
	{"npm", npmPkgRe.MatchString,
		func(b []byte, p string, sc scanContext) []Component { return one(npm(b, p, sc.npmIntegrity)) }},
	{"pypi", distRe.MatchString,
		func(b []byte, p string, _ scanContext) []Component { return one(pypi(b, p)) }},
	// Go binaries' build info, keyed NAME\x00go by scanLayer.
	{"golang", func(p string) bool { return strings.HasSuffix(p, "\x00go") },
		func(b []byte, p string, _ scanContext) []Component { return golang(b, strings.TrimSuffix(p, "\x00go")) }},
}

// Ecosystems lists the package types the SBOM catalogs.
func Ecosystems() []string {
	var out []string
	for _, c := range catalogers {
		out = append(out, c.Ecosystem)
	}
	return out
}

func scanCached(ctx context.Context, l v1.Layer, cache Cache) (*layerScan, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	key := scanKey(d)
	if cache != nil {
		if b, ok := cache.ReadMeta(key); ok {
			var ly layerScan
			if json.Unmarshal(b, &ly) == nil {
				return &ly, nil
			}
		}
	}
	rc, err := layers.Uncompressed(l)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	ly := &layerScan{Files: map[string][]byte{}}
	if err := scanLayer(layers.ContextReader(ctx, rc), ly); err != nil {
		return nil, err
	}
	if cache != nil {
		if b, err := json.Marshal(ly); err == nil {
			_ = cache.WriteMeta(key, b) // best effort: without it the next build scans again
		}
	}
	return ly, nil
}

// scanKey is the cache key of a layer's scan.
func scanKey(d v1.Hash) string { return "sbom-layer-v1-" + d.Hex }

// Tee returns a layers.Store Tee that scans each layer as the store
// writes it and keeps the scan in cache, where Scan finds it: a new layer
// is not decompressed again for the image's SBOM.
func Tee(cache Cache) func(io.Reader) func(layers.Descriptor) {
	return func(r io.Reader) func(layers.Descriptor) {
		ly := &layerScan{Files: map[string][]byte{}}
		if err := scanLayer(r, ly); err != nil {
			return nil // Scan reads the stored layer instead
		}
		b, err := json.Marshal(ly)
		if err != nil {
			return nil
		}
		return func(d layers.Descriptor) {
			_ = cache.WriteMeta(scanKey(d.Digest), b) // best effort, as in scanCached
		}
	}
}

func scanLayer(r io.Reader, ly *layerScan) error {
	files := ly.Files
	return layers.Entries(r, func(name string, h *tar.Header, rd io.Reader) error {
		dir, base := path.Split(name)
		if strings.HasPrefix(base, ".wh.") {
			ly.Whiteout = append(ly.Whiteout, path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			return nil
		}
		if h.Typeflag != tar.TypeReg {
			return nil
		}
		if interesting(name) && h.Size < 64<<20 {
			b, err := io.ReadAll(rd)
			if err != nil {
				return err
			}
			files[name] = b
			return nil
		}
		// Go binaries: executables with Go build info.
		if h.Mode&0o111 != 0 && h.Size > 1024 && h.Size < 256<<20 {
			b, err := io.ReadAll(rd)
			if err != nil {
				return err
			}
			if bytes.HasPrefix(b, []byte("\x7fELF")) && bytes.Contains(b, []byte("\xff Go buildinf:")) {
				if bi, err := buildinfo.Read(bytes.NewReader(b)); err == nil {
					files[name+"\x00go"] = []byte(bi.String())
				}
			}
		}
		return nil
	})
}

type distroInfo struct{ id, version string }

func osRelease(bs ...[]byte) distroInfo {
	for _, b := range bs {
		if b == nil {
			continue
		}
		d := distroInfo{}
		for _, line := range strings.Split(string(b), "\n") {
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				continue
			}
			v = strings.Trim(v, `"`)
			switch k {
			case "ID":
				d.id = v
			case "VERSION_ID":
				d.version = v
			}
		}
		return d
	}
	return distroInfo{}
}

// qualifiers are a distribution package's purl qualifiers: its
// architecture and the distribution (debian-13).
func (d distroInfo) qualifiers(arch string) packageurl.Qualifiers {
	q := map[string]string{"arch": arch}
	switch {
	case d.id != "" && d.version != "":
		q["distro"] = d.id + "-" + d.version
	case d.id != "":
		q["distro"] = d.id
	}
	return packageurl.QualifiersFromMap(q)
}

// purl is a package URL, written by packageurl-go (its escaping and
// qualifier order follow the spec).
func purl(typ, namespace, name, version string, q packageurl.Qualifiers) string {
	return packageurl.NewPackageURL(typ, namespace, name, version, q, "").ToString()
}

func stanzas(b []byte) []map[string]string {
	var out []map[string]string
	cur := map[string]string{}
	last := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if len(cur) > 0 {
				out = append(out, cur)
			}
			cur, last = map[string]string{}, ""
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if last != "" {
				cur[last] += "\n" + line
			}
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			cur[k] = strings.TrimSpace(v)
			last = k
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

func dpkg(b []byte, d distroInfo, p string) []Component {
	var out []Component
	ns := d.id
	if ns == "" {
		ns = "debian"
	}
	for _, s := range stanzas(b) {
		if st := s["Status"]; st != "" && !strings.HasSuffix(st, " installed") {
			continue
		}
		name, ver := s["Package"], s["Version"]
		if name == "" || ver == "" {
			continue
		}
		out = append(out, Component{Type: "deb", Name: name, Version: ver, PURL: purl(packageurl.TypeDebian, ns, name, ver, d.qualifiers(s["Architecture"])), Path: p})
	}
	return out
}

func apk(b []byte, d distroInfo, p string) []Component {
	var out []Component
	ns := d.id
	if ns == "" {
		ns = "alpine"
	}
	for _, block := range strings.Split(string(b), "\n\n") {
		var name, ver, arch string
		for _, line := range strings.Split(block, "\n") {
			if len(line) < 2 || line[1] != ':' {
				continue
			}
			switch line[0] {
			case 'P':
				name = line[2:]
			case 'V':
				ver = line[2:]
			case 'A':
				arch = line[2:]
			}
		}
		if name != "" && ver != "" {
			out = append(out, Component{Type: "apk", Name: name, Version: ver, PURL: purl(packageurl.TypeApk, ns, name, ver, d.qualifiers(arch)), Path: p})
		}
	}
	return out
}

// npmIntegrity maps node_modules paths to the integrity npm recorded in
// node_modules/.package-lock.json.
func npmIntegrity(files map[string][]byte) map[string]string {
	out := map[string]string{}
	for p, b := range files {
		if !strings.HasSuffix(p, "node_modules/.package-lock.json") {
			continue
		}
		root := strings.TrimSuffix(p, "node_modules/.package-lock.json")
		var lock struct {
			Packages map[string]struct {
				Integrity string `json:"integrity"`
			} `json:"packages"`
		}
		if json.Unmarshal(b, &lock) != nil {
			continue
		}
		for k, v := range lock.Packages {
			if strings.HasPrefix(v.Integrity, "sha512-") {
				if raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(v.Integrity, "sha512-")); err == nil {
					out[root+k] = hex.EncodeToString(raw)
				}
			}
		}
	}
	return out
}

func npm(b []byte, p string, integrity map[string]string) (Component, bool) {
	var pkg struct {
		Name    string `json:"name"`
		Version string `json:"version"`
	}
	if json.Unmarshal(b, &pkg) != nil || pkg.Name == "" || pkg.Version == "" {
		return Component{}, false
	}
	// A package.json is a package when its directory is named like it
	// (node_modules/NAME, Debian's /usr/share/nodejs/NAME, global
	// installs) or when it is a project root outside node_modules (the
	// app itself); nested ones inside a package (test fixtures, dist
	// folders) are not.
	dir := strings.TrimSuffix(strings.TrimSuffix(p, "package.json"), "/")
	if !(strings.HasSuffix(dir, "/"+pkg.Name) || dir == pkg.Name || !strings.Contains(dir, "node_modules/") && !strings.Contains(dir, "nodejs/")) {
		return Component{}, false
	}
	scope, name := "", pkg.Name
	if strings.HasPrefix(name, "@") {
		scope, name, _ = strings.Cut(name, "/")
	}
	// integrity is keyed by image path (project root + node_modules/...).
	return Component{Type: "npm", Name: pkg.Name, Version: pkg.Version, PURL: purl(packageurl.TypeNPM, scope, name, pkg.Version, nil), Path: p, SHA512: integrity[dir]}, true
}

func pypi(b []byte, p string) (Component, bool) {
	var name, ver string
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" {
			break // headers end at the first blank line
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			switch k {
			case "Name":
				name = strings.TrimSpace(v)
			case "Version":
				ver = strings.TrimSpace(v)
			}
		}
	}
	if name == "" || ver == "" {
		return Component{}, false
	}
	norm := strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(name))
	return Component{Type: "pypi", Name: name, Version: ver, PURL: purl(packageurl.TypePyPi, "", norm, ver, nil), Path: p}, true
}

func golang(b []byte, p string) []Component {
	bi, err := debug.ParseBuildInfo(string(b))
	if err != nil {
		return nil
	}
	if v, ok := strings.CutPrefix(strings.SplitN(string(b), "\n", 2)[0], "go\t"); ok && bi.GoVersion == "" {
		bi.GoVersion = v // ParseBuildInfo leaves the go line to the caller
	}
	out := []Component{{Type: "golang", Name: "stdlib", Version: bi.GoVersion, PURL: purl(packageurl.TypeGolang, "", "stdlib", bi.GoVersion, nil), Path: p}}
	if bi.Main.Path != "" {
		v := bi.Main.Version
		if v == "(devel)" {
			v = ""
		}
		out = append(out, Component{Type: "golang", Name: bi.Main.Path, Version: bi.Main.Version, PURL: goPURL(bi.Main.Path, v), Path: p})
	}
	for _, d := range bi.Deps {
		m := d
		if d.Replace != nil {
			m = d.Replace
		}
		out = append(out, Component{Type: "golang", Name: m.Path, Version: m.Version, PURL: goPURL(m.Path, m.Version), Path: p})
	}
	return out
}

func dedupe(cs []Component) []Component {
	seen := map[string]bool{}
	var out []Component
	for _, c := range cs {
		if seen[c.PURL] {
			continue
		}
		seen[c.PURL] = true
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PURL < out[j].PURL })
	return out
}

// goPURL is a Go module's package URL: its path's last element is the
// name, the rest the namespace.
func goPURL(module, version string) string {
	ns, name := path.Split(module)
	return purl(packageurl.TypeGolang, strings.TrimSuffix(ns, "/"), name, version, nil)
}
