package publish

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/packer-build/packer/internal/tmpdir"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/oci"
)

const refNameAnnotation = "org.opencontainers.image.ref.name"

// WriteLayout writes the result into the OCI layout at dir, tagged with
// each tag's identifier (org.opencontainers.image.ref.name), replacing
// images that had those tags. A new layout is written beside dir and
// renamed into place; in an existing layout blobs are added first and
// index.json is replaced atomically last, so a failure leaves no
// half-written layout.
//
// referrers are added to the layout's index.json untagged, as the OCI
// image layout keeps artifacts that refer to an image.
func WriteLayout(ctx context.Context, dir string, res oci.Result, tags []string, referrers ...v1.Image) error {
	if len(tags) == 0 {
		tags = []string{name.DefaultTag}
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); errors.Is(err, fs.ErrNotExist) {
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			return fmt.Errorf("output %s exists and is not an OCI layout; choose an empty or new directory", dir)
		}
		if err := ensureDir(dir); err != nil {
			return fmt.Errorf("creating output directory: %w", err)
		}
		tmpdir.Reclaim(filepath.Dir(dir), ".packer-layout-")
		tmp, err := tmpdir.Mkdir(filepath.Dir(dir), ".packer-layout-")
		if err != nil {
			return fmt.Errorf("creating output directory: %w", err)
		}
		defer os.RemoveAll(tmp)
		if err := writeLayout(ctx, tmp, res, tags, true, referrers); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("writing OCI layout %s: %w", dir, context.Cause(ctx))
		}
		os.Remove(dir) // an empty directory may stand in the way
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("moving the layout into place: %w", err)
		}
		return nil
	}
	return writeLayout(ctx, dir, res, tags, false, referrers)
}

func writeLayout(ctx context.Context, dir string, res oci.Result, tags []string, fresh bool, referrers []v1.Image) error {
	var p layout.Path
	var err error
	if fresh {
		p, err = layout.Write(dir, empty.Index)
	} else {
		p, err = layout.FromPath(dir)
	}
	if err != nil {
		return fmt.Errorf("opening OCI layout %s: %w", dir, err)
	}
	// The layer blobs first, each through a temp file renamed into place
	// and stopping at an interrupt; go-containerregistry then finds them
	// and writes the small rest (configs, manifests).
	if err := writeBlobs(ctx, dir, res); err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	switch r := res.(type) {
	case v1.ImageIndex:
		err = p.WriteIndex(r)
	case v1.Image:
		err = p.WriteImage(r)
	default:
		err = fmt.Errorf("cannot write %T", res)
	}
	if err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	desc, err := partial.Descriptor(res.(partial.Describable))
	if err != nil {
		return err
	}
	// Tools that pick an image by platform (syft, podman) need it on the
	// descriptor.
	if img, ok := res.(v1.Image); ok {
		if cfg, err := img.ConfigFile(); err == nil && cfg.OS != "" {
			desc.Platform = &v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
		}
	}
	tagSet := map[string]bool{}
	for _, t := range tags {
		tagSet[t] = true
	}
	// Images losing their tag here take their referrers (SBOMs) with them,
	// unless another tag still points at them.
	old, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	replaced, kept := map[v1.Hash]bool{}, map[v1.Hash]bool{}
	for _, d := range old.Manifests {
		if n := d.Annotations[refNameAnnotation]; n != "" {
			if tagSet[n] {
				replaced[d.Digest] = true
			} else {
				kept[d.Digest] = true
			}
		}
	}
	oldRefs, err := layoutReferrers(dir, old)
	if err != nil {
		return err
	}
	var refs []v1.Descriptor
	seen := map[v1.Hash]bool{}
	for _, r := range referrers {
		if err := p.WriteImage(r); err != nil {
			return fmt.Errorf("writing the SBOM to %s: %w", dir, err)
		}
		rd, err := partial.Descriptor(r)
		if err != nil {
			return err
		}
		var am struct {
			ArtifactType string `json:"artifactType"`
		}
		raw, err := r.RawManifest()
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &am); err != nil {
			return fmt.Errorf("reading the SBOM manifest: %w", err)
		}
		rd.ArtifactType = am.ArtifactType
		refs = append(refs, *rd)
		seen[rd.Digest] = true
	}
	for _, r := range oldRefs {
		if seen[r.Digest] {
			continue
		}
		raw, err := os.ReadFile(filepath.Join(dir, "blobs", r.Digest.Algorithm, r.Digest.Hex))
		if err != nil {
			continue // its manifest is gone: nothing to keep
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil || m.Subject == nil || (replaced[m.Subject.Digest] && !kept[m.Subject.Digest]) {
			continue
		}
		refs = append(refs, r)
		seen[r.Digest] = true
	}
	// index.json holds the tagged images only (referrers written by
	// earlier versions at its top level move into the referrers index).
	idx = mutate.RemoveManifests(idx, func(d v1.Descriptor) bool {
		return tagSet[d.Annotations[refNameAnnotation]] || d.Annotations[refNameAnnotation] == "" && d.ArtifactType != ""
	})
	var adds []mutate.IndexAddendum
	for _, t := range tags {
		dd := *desc
		dd.Annotations = map[string]string{refNameAnnotation: t}
		adds = append(adds, mutate.IndexAddendum{Add: res.(mutate.Appendable), Descriptor: dd})
	}
	idx = mutate.AppendManifests(idx, adds...)
	im, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	im = im.DeepCopy()
	delete(im.Annotations, ReferrersAnnotation)
	if len(refs) > 0 {
		sort.Slice(refs, func(i, j int) bool { return refs[i].Digest.String() < refs[j].Digest.String() })
		ri, err := json.Marshal(v1.IndexManifest{SchemaVersion: 2, MediaType: types.OCIImageIndex, Manifests: refs})
		if err != nil {
			return err
		}
		h, _, err := v1.SHA256(bytes.NewReader(ri))
		if err != nil {
			return err
		}
		if err := p.WriteBlob(h, io.NopCloser(bytes.NewReader(ri))); err != nil {
			return fmt.Errorf("writing the referrers index to %s: %w", dir, err)
		}
		if im.Annotations == nil {
			im.Annotations = map[string]string{}
		}
		im.Annotations[ReferrersAnnotation] = h.String()
	}
	if len(im.Annotations) == 0 {
		im.Annotations = nil
	}
	raw, err := json.MarshalIndent(im, "", "   ")
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("writing OCI layout %s: %w", dir, context.Cause(ctx))
	}
	if err := layers.WriteFileAtomic(filepath.Join(dir, "index.json"), raw, 0o644); err != nil {
		return err
	}
	if !fresh {
		// A layout rebuilt in place drops the blobs nothing references
		// any more (the old image's layers, its SBOMs).
		return collectLayout(dir, im)
	}
	return nil
}

// collectLayout removes the blobs of the layout at dir that im (its
// index.json) does not reach through manifests, indexes, configs, layers
// and subjects. Blobs being written (temp names) are left alone.
func collectLayout(dir string, im *v1.IndexManifest) error {
	keep := map[string]bool{}
	var walk func(d v1.Descriptor) error
	walk = func(d v1.Descriptor) error {
		if keep[d.Digest.Hex] {
			return nil
		}
		keep[d.Digest.Hex] = true
		if !d.MediaType.IsIndex() && !d.MediaType.IsImage() {
			return nil
		}
		raw, err := os.ReadFile(filepath.Join(dir, "blobs", d.Digest.Algorithm, d.Digest.Hex))
		if err != nil {
			return err
		}
		if d.MediaType.IsIndex() {
			child, err := v1.ParseIndexManifest(bytes.NewReader(raw))
			if err != nil {
				return err
			}
			for _, m := range child.Manifests {
				if err := walk(m); err != nil {
					return err
				}
			}
			return nil
		}
		m, err := v1.ParseManifest(bytes.NewReader(raw))
		if err != nil {
			return err
		}
		keep[m.Config.Digest.Hex] = true
		for _, l := range m.Layers {
			keep[l.Digest.Hex] = true
		}
		return nil
	}
	roots := slices.Clone(im.Manifests)
	if h, err := v1.NewHash(im.Annotations[ReferrersAnnotation]); err == nil {
		roots = append(roots, v1.Descriptor{MediaType: types.OCIImageIndex, Digest: h})
	}
	for _, d := range roots {
		if err := walk(d); err != nil {
			return fmt.Errorf("collecting the layout's unused blobs: %w", err)
		}
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	ents, err := os.ReadDir(blobs)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if !keep[e.Name()] && !strings.HasPrefix(e.Name(), ".") {
			if err := os.Remove(filepath.Join(blobs, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// WriteTarball writes a docker-archive (what `docker save` writes and
// `docker load` reads) with the given tags, through a temp file renamed
// into place.
func WriteTarball(ctx context.Context, file string, res oci.Result, tags []name.Tag) error {
	img, ok := res.(v1.Image)
	if !ok {
		return fmt.Errorf("a docker-archive holds one platform's image; build one --platform for tar: output, or use oci: for several")
	}
	if err := ensureDir(file); err != nil {
		return err
	}
	refs := map[name.Reference]v1.Image{}
	for _, t := range tags {
		refs[t] = img
	}
	if len(refs) == 0 {
		return fmt.Errorf("tar: output needs a tag so that docker load can name the image; pass -t NAME[:TAG]")
	}
	tmpdir.Reclaim(filepath.Dir(file), ".packer-tar-")
	tmp, err := os.CreateTemp(filepath.Dir(file), tmpdir.Pattern(".packer-tar-"))
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	if err := tarball.MultiRefWrite(refs, layers.ContextWriter(ctx, tmp)); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

func ensureDir(p string) error {
	return os.MkdirAll(filepath.Dir(p), 0o755)
}

// checkLayoutDest refuses an existing non-empty directory that is not an
// OCI layout, before anything is built.
func checkLayoutDest(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return nil
	}
	if !st.IsDir() {
		return fmt.Errorf("oci:%s is a file; choose a directory for the OCI layout", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "index.json")); err == nil {
		return nil
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		return fmt.Errorf("oci:%s exists and is not an OCI layout; choose an empty or new directory", dir)
	}
	return nil
}

// writeBlobs writes the layer blobs of res that dir's layout lacks, each
// to a temp file beside it that is renamed into place once complete, so
// an interrupt leaves no partial blob under a digest's name.
func writeBlobs(ctx context.Context, dir string, res oci.Result) error {
	var imgs []v1.Image
	switch r := res.(type) {
	case v1.Image:
		imgs = append(imgs, r)
	case v1.ImageIndex:
		im, err := r.IndexManifest()
		if err != nil {
			return err
		}
		for _, d := range im.Manifests {
			img, err := r.Image(d.Digest)
			if err != nil {
				return err
			}
			imgs = append(imgs, img)
		}
	}
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	for _, img := range imgs {
		ls, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range ls {
			if err := writeBlob(ctx, blobs, l); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeBlob(ctx context.Context, blobs string, l v1.Layer) error {
	d, err := l.Digest()
	if err != nil {
		return err
	}
	size, err := l.Size()
	if err != nil {
		return err
	}
	final := filepath.Join(blobs, d.Hex)
	if st, err := os.Stat(final); err == nil && st.Size() == size {
		return nil
	}
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(blobs, tmpdir.Pattern(".packer-blob-"))
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	n, err := io.Copy(layers.ContextWriter(ctx, tmp), rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("layer %s: wrote %d bytes, want %d", d, n, size)
	}
	return os.Rename(tmp.Name(), final)
}

// WriteOCIArchive writes the result as an OCI layout packed in a tar file
// (what `docker buildx build --output type=oci,dest=FILE.tar` writes, and
// skopeo reads as oci-archive:FILE), through a temp file renamed into
// place. The layout's files are written in name order with fixed times,
// so the same result gives the same bytes.
func WriteOCIArchive(ctx context.Context, file string, res oci.Result, tags []string, referrers ...v1.Image) error {
	if err := ensureDir(file); err != nil {
		return err
	}
	tmpdir.Reclaim(filepath.Dir(file), ".packer-ocitar-")
	work, err := tmpdir.Mkdir(filepath.Dir(file), ".packer-ocitar-")
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	defer os.RemoveAll(work)
	dir := filepath.Join(work, "layout")
	if err := WriteLayout(ctx, dir, res, tags, referrers...); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(work, "archive-")
	if err != nil {
		return err
	}
	tw := tar.NewWriter(layers.ContextWriter(ctx, tmp))
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		hdr := &tar.Header{Name: filepath.ToSlash(rel), ModTime: layers.ModTime, Mode: 0o644, Format: tar.FormatPAX}
		if d.IsDir() {
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, hdr.Name+"/", 0o755
			return tw.WriteHeader(hdr)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, info.Size()
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err == nil {
		err = tw.Close()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// ReferrersAnnotation, on a layout's index.json, names the blob of an OCI
// image index that lists the layout's referrers (SBOMs, with their
// artifactType), in the shape of a registry's referrers answer. They stay
// out of index.json's own list, so the tools that take a layout's one
// image without a tag (skopeo inspect oci:DIR, podman pull oci:DIR) and
// umoci see one image; they stay reachable: packer sbom oci:DIR reads
// them, and each names its image as subject.
const ReferrersAnnotation = "dev.packer.referrers"

// LayoutReferrers lists the referrers of the layout at dir: those of its
// referrers index, and the untagged artifact entries earlier versions put
// in index.json itself.
func LayoutReferrers(dir string) ([]v1.Descriptor, error) {
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, err
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	return layoutReferrers(dir, im)
}

func layoutReferrers(dir string, im *v1.IndexManifest) ([]v1.Descriptor, error) {
	var out []v1.Descriptor
	for _, d := range im.Manifests {
		if d.ArtifactType != "" && d.Annotations[refNameAnnotation] == "" {
			out = append(out, d)
		}
	}
	h, err := v1.NewHash(im.Annotations[ReferrersAnnotation])
	if err != nil {
		return out, nil
	}
	raw, err := os.ReadFile(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
	if err != nil {
		return nil, fmt.Errorf("the layout's referrers index %s: %w", h, err)
	}
	ri, err := v1.ParseIndexManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("the layout's referrers index %s: %w", h, err)
	}
	return append(out, ri.Manifests...), nil
}

// LayoutImage reads the image whose manifest is blob h of the layout at
// dir, whether index.json lists it or not (a referrer).
func LayoutImage(dir string, h v1.Hash) (v1.Image, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "blobs", h.Algorithm, h.Hex))
	if err != nil {
		return nil, err
	}
	m, err := v1.ParseManifest(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&blobImage{dir: dir, raw: raw, mt: m.MediaType})
}

// blobImage is an image read straight from a layout's blobs.
type blobImage struct {
	dir string
	raw []byte
	mt  types.MediaType
}

func (b *blobImage) blob(h v1.Hash) string { return filepath.Join(b.dir, "blobs", h.Algorithm, h.Hex) }

func (b *blobImage) MediaType() (types.MediaType, error) { return b.mt, nil }
func (b *blobImage) RawManifest() ([]byte, error)        { return b.raw, nil }
func (b *blobImage) RawConfigFile() ([]byte, error) {
	m, err := v1.ParseManifest(bytes.NewReader(b.raw))
	if err != nil {
		return nil, err
	}
	return os.ReadFile(b.blob(m.Config.Digest))
}

func (b *blobImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	m, err := v1.ParseManifest(bytes.NewReader(b.raw))
	if err != nil {
		return nil, err
	}
	for _, l := range m.Layers {
		if l.Digest == h {
			return &blobLayer{path: b.blob(h), desc: l}, nil
		}
	}
	return nil, fmt.Errorf("layer %s is not in the manifest", h)
}

type blobLayer struct {
	path string
	desc v1.Descriptor
}

func (l *blobLayer) Digest() (v1.Hash, error)            { return l.desc.Digest, nil }
func (l *blobLayer) Size() (int64, error)                { return l.desc.Size, nil }
func (l *blobLayer) MediaType() (types.MediaType, error) { return l.desc.MediaType, nil }
func (l *blobLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
