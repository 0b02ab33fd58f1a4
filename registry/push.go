package registry

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"golang.org/x/sync/errgroup"

	"github.com/packer-build/packer/oci"
)

// Push uploads the result to each tag's repository — blobs, then the
// manifest by digest, then the images stored under tags of their own
// (cosign signatures, so a tag never points at an unsigned image) — and
// only then moves the tags, so a failed push never leaves a tag pointing
// at a partial image. The SBOM referrers go last: a registry without the
// referrers API gets a sha256-… fallback tag for them, which must not
// appear for an image whose tags did not move. It returns the digest
// references pushed.
func (c *Client) Push(ctx context.Context, res oci.Result, tags []name.Tag, att oci.Attachments) ([]name.Digest, error) {
	d, err := res.Digest()
	if err != nil {
		return nil, err
	}
	opts := c.RemoteOptions(ctx)
	// One pusher for everything but the image's own write (which reports
	// progress): it asks each repository for its auth once, and knows the
	// blobs it uploaded, so the SBOM manifests pushed after the tags need
	// no second look at them.
	pusher, err := remote.NewPusher(opts...)
	if err != nil {
		return nil, err
	}
	var repos []name.Repository
	seen := map[string]bool{}
	for _, t := range tags {
		if repo := t.Context(); !seen[repo.String()] {
			seen[repo.String()] = true
			repos = append(repos, repo)
		}
	}
	var pushed []name.Digest
	first := map[string]name.Repository{} // registry → the first repository pushed there
	there := map[string]bool{}            // repositories that held the image already
	for _, repo := range repos {
		dig := repo.Digest(d.String())
		res := res
		if from, ok := first[repo.RegistryStr()]; ok {
			// The blobs are in that repository now: mounted, not sent
			// again (go-containerregistry mounts a MountableLayer).
			res = mountable(res, from)
		} else {
			first[repo.RegistryStr()] = repo
		}
		if len(att.Referrers) > 0 {
			// Pushed before (a rebuild with no change): nothing to
			// upload, and the SBOM documents are there too, or are
			// uploaded with their manifests below.
			if desc, err := remote.Head(dig, opts...); err == nil && desc.Digest == d {
				there[repo.String()] = true
				pushed = append(pushed, dig)
				if err := pushTagged(ctx, pusher, repo, att); err != nil {
					return nil, err
				}
				continue
			}
		}
		// The SBOM documents go up with the image's blobs; their
		// manifests wait for the tags (below).
		var docs []v1.Layer
		for _, r := range att.Referrers {
			blobs, err := artifactBlobs(r)
			if err != nil {
				return nil, err
			}
			docs = append(docs, blobs...)
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(5) // the image's write (its own 4 jobs) and 4 documents
		g.Go(func() error { return c.writeImage(dig, res, repo, opts) })
		for _, l := range docs {
			g.Go(func() error { return pusher.Upload(gctx, repo, l) })
		}
		if err := g.Wait(); err != nil {
			return nil, explain("pushing to "+repo.String(), repo.RegistryStr(), err)
		}
		if err := pushTagged(ctx, pusher, repo, att); err != nil {
			return nil, err
		}
		pushed = append(pushed, dig)
	}
	for i, t := range tags {
		put := pusher.Put
		if there[t.Context().String()] {
			put = pusher.Push // looks at the tag first: usually it points there already
		}
		if err := put(ctx, t, res.(remote.Taggable)); err != nil {
			return nil, &TagError{Moved: tags[:i], NotMoved: tags[i:], Digest: d.String(), Err: explain("tagging "+t.String(), t.RegistryStr(), err)}
		}
	}
	for _, repo := range repos {
		for _, r := range att.Referrers {
			rd, err := r.Digest()
			if err != nil {
				return nil, err
			}
			if err := pusher.Push(ctx, repo.Digest(rd.String()), r); err != nil {
				return nil, fmt.Errorf("the image and its tags are pushed, but its SBOM is not: %w", explain("pushing the SBOM to "+repo.String(), repo.RegistryStr(), err))
			}
		}
	}
	return pushed, nil
}

// pushTagged pushes the images stored under tags of their own (cosign
// signatures) to repo.
func pushTagged(ctx context.Context, pusher *remote.Pusher, repo name.Repository, att oci.Attachments) error {
	extra := att.Tagged[repo.Name()]
	for _, tag := range slices.Sorted(maps.Keys(extra)) {
		if err := pusher.Push(ctx, repo.Tag(tag), extra[tag]); err != nil {
			return explain("pushing the signature to "+repo.String(), repo.RegistryStr(), err)
		}
	}
	return nil
}

// artifactBlobs are an image's layers and config blob.
func artifactBlobs(img v1.Image) ([]v1.Layer, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	cl, err := partial.ConfigLayer(img)
	if err != nil {
		return nil, err
	}
	return append(ls, cl), nil
}

// writeImage writes res by digest to repo, reporting its bytes to
// c.Progress.
func (c *Client) writeImage(dig name.Digest, res oci.Result, repo name.Repository, opts []remote.Option) error {
	wopts := opts
	if c.Progress != nil {
		// Bytes of the image's blobs as they go (a fresh channel per
		// write: go-containerregistry closes it when done).
		ch := make(chan v1.Update, 16)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for u := range ch {
				if u.Error == nil {
					c.Progress(repo.String(), u.Complete, u.Total)
				}
			}
		}()
		wopts = append(slices.Clone(opts), remote.WithProgress(ch))
		err := write(dig, res, wopts)
		<-done
		return err
	}
	return write(dig, res, wopts)
}

func write(ref name.Reference, res oci.Result, opts []remote.Option) error {
	switch r := res.(type) {
	case v1.ImageIndex:
		return remote.WriteIndex(ref, r, opts...)
	case v1.Image:
		return remote.Write(ref, r, opts...)
	}
	return fmt.Errorf("cannot push %T", res)
}

// TagError is a push whose image and attachments all arrived, but whose
// tags moved only in part: it says which did and which did not.
type TagError struct {
	Moved, NotMoved []name.Tag
	Digest          string
	Err             error
}

func (e *TagError) Error() string {
	list := func(ts []name.Tag) string {
		if len(ts) == 0 {
			return "none"
		}
		var out []string
		for _, t := range ts {
			out = append(out, t.String())
		}
		return strings.Join(out, ", ")
	}
	return fmt.Sprintf("%v; the image is pushed (%s), tags moved: %s; not moved: %s; push again to move the rest", e.Err, e.Digest, list(e.Moved), list(e.NotMoved))
}

func (e *TagError) Unwrap() error { return e.Err }

// mountable returns res with its layers as remote.MountableLayer from
// repo, so pushing it to another repository of the same registry asks
// for a cross-repository mount instead of uploading each blob.
func mountable(res oci.Result, repo name.Repository) oci.Result {
	switch r := res.(type) {
	case v1.ImageIndex:
		return &mountIndex{idx: r, repo: repo}
	case v1.Image:
		return &mountImage{Image: r, repo: repo}
	}
	return res
}

type mountImage struct {
	v1.Image
	repo name.Repository
}

func (m *mountImage) wrap(l v1.Layer) (v1.Layer, error) {
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	return &remote.MountableLayer{Layer: l, Reference: m.repo.Digest(d.String())}, nil
}

func (m *mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		if out[i], err = m.wrap(l); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (m *mountImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := m.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return m.wrap(l)
}

func (m *mountImage) LayerByDiffID(h v1.Hash) (v1.Layer, error) {
	l, err := m.Image.LayerByDiffID(h)
	if err != nil {
		return nil, err
	}
	return m.wrap(l)
}

// ConfigLayer lets the config blob be mounted too.
func (m *mountImage) ConfigLayer() (v1.Layer, error) {
	l, err := partial.ConfigLayer(m.Image)
	if err != nil {
		return nil, err
	}
	return m.wrap(l)
}

// Descriptor keeps the image's own descriptor (its platform in an index).
func (m *mountImage) Descriptor() (*v1.Descriptor, error) { return partial.Descriptor(m.Image) }

type mountIndex struct {
	idx  v1.ImageIndex
	repo name.Repository
}

func (m *mountIndex) MediaType() (types.MediaType, error)       { return m.idx.MediaType() }
func (m *mountIndex) Digest() (v1.Hash, error)                  { return m.idx.Digest() }
func (m *mountIndex) Size() (int64, error)                      { return m.idx.Size() }
func (m *mountIndex) IndexManifest() (*v1.IndexManifest, error) { return m.idx.IndexManifest() }
func (m *mountIndex) RawManifest() ([]byte, error)              { return m.idx.RawManifest() }
func (m *mountIndex) Descriptor() (*v1.Descriptor, error)       { return partial.Descriptor(m.idx) }

func (m *mountIndex) Image(h v1.Hash) (v1.Image, error) {
	img, err := m.idx.Image(h)
	if err != nil {
		return nil, err
	}
	return &mountImage{Image: img, repo: m.repo}, nil
}

func (m *mountIndex) ImageIndex(h v1.Hash) (v1.ImageIndex, error) {
	idx, err := m.idx.ImageIndex(h)
	if err != nil {
		return nil, err
	}
	return &mountIndex{idx: idx, repo: m.repo}, nil
}
