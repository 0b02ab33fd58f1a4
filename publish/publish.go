// Package publish writes a build's result somewhere: a registry, an OCI
// image layout, or a docker-archive tarball. Each destination is a
// Publisher; Multi publishes to several in order. Outputs are parsed once
// (Parse) into these typed values, so adding a kind of output (a local
// docker or podman daemon) is one type and one case in Parse.
package publish

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/packer-build/packer/oci"
	"github.com/packer-build/packer/registry"
)

// Publisher writes a build's result, with its attachments, to one
// destination.
type Publisher interface {
	// Check says, before anything is built, whether this destination can
	// take a build for the given number of platforms.
	Check(platforms int) error
	// Publish writes b and whatever of att the destination can hold.
	Publish(ctx context.Context, b *oci.Built, att oci.Attachments) (*Published, error)
	// String names the destination for logs: "registry", "oci:DIR",
	// "tar:FILE".
	String() string
}

// Published says what a publisher wrote.
type Published struct {
	// Refs are the digest references pushed (REPO@DIGEST), for a registry.
	Refs []name.Digest
	// Tags are the tags that now point at the result.
	Tags []string
	// Path is the file or directory written, for a local output.
	Path string
	// Dropped lists attachments the destination cannot hold ("SBOM").
	Dropped []string
}

// Local is a publisher that writes inside the file system; a build
// leaves its path out of the context, so an output inside the app's
// directory never feeds the next build.
type Local interface {
	Publisher
	Path() string
}

// Repositories is a publisher that pushes to registry repositories: the
// signatures it carries are made for each (cosign names the repository).
type Repositories interface {
	Publisher
	Repositories() []name.Repository
}

// Remote pushes to the registries of its tags.
type Remote struct {
	Client *registry.Client
	Tags   []name.Tag
}

var _ Repositories = (*Remote)(nil)

// Check implements Publisher.
func (r *Remote) Check(int) error {
	if len(r.Tags) == 0 {
		return fmt.Errorf("--push needs at least one -t REGISTRY/NAME[:TAG] to push to")
	}
	return nil
}

// Publish implements Publisher: blobs, then manifests by digest, then the
// attachments, tags last.
func (r *Remote) Publish(ctx context.Context, b *oci.Built, att oci.Attachments) (*Published, error) {
	refs, err := r.Client.Push(ctx, b.Result, r.Tags, att)
	if err != nil {
		return nil, err
	}
	p := &Published{Refs: refs}
	for _, t := range r.Tags {
		p.Tags = append(p.Tags, t.String())
	}
	return p, nil
}

// Repositories implements Repositories.
func (r *Remote) Repositories() []name.Repository {
	var out []name.Repository
	seen := map[string]bool{}
	for _, t := range r.Tags {
		if repo := t.Context(); !seen[repo.String()] {
			seen[repo.String()] = true
			out = append(out, repo)
		}
	}
	return out
}

func (r *Remote) String() string { return "registry" }

// Layout writes an OCI image layout at Dir, with the SBOMs as untagged
// referrers in its index.
type Layout struct {
	Dir  string
	Tags []string // tag identifiers (org.opencontainers.image.ref.name); none means "latest"
}

var _ Local = (*Layout)(nil)

// Check implements Publisher: an existing directory must be empty or an
// OCI layout.
func (l *Layout) Check(int) error { return checkLayoutDest(l.Dir) }

// Publish implements Publisher.
func (l *Layout) Publish(ctx context.Context, b *oci.Built, att oci.Attachments) (*Published, error) {
	if err := WriteLayout(ctx, l.Dir, b.Result, l.Tags, att.Referrers...); err != nil {
		return nil, err
	}
	tags := l.Tags
	if len(tags) == 0 {
		tags = []string{name.DefaultTag}
	}
	return &Published{Path: l.Dir, Tags: tags}, nil
}

// Path implements Local.
func (l *Layout) Path() string   { return l.Dir }
func (l *Layout) String() string { return "oci:" + l.Dir }

// Tarball writes a docker-archive (what docker load reads) of one
// platform's image.
type Tarball struct {
	File string
	Tags []name.Tag
}

var _ Local = (*Tarball)(nil)

// Check implements Publisher.
func (t *Tarball) Check(platforms int) error {
	if platforms > 1 {
		return fmt.Errorf("tar:%s holds one platform's image; build one --platform, or use oci:DIR for %d platforms", t.File, platforms)
	}
	if len(t.Tags) == 0 {
		return fmt.Errorf("tar:%s needs a name for docker load; pass -t NAME[:TAG]", t.File)
	}
	return nil
}

// Publish implements Publisher. A docker-archive has no place for SBOMs.
func (t *Tarball) Publish(ctx context.Context, b *oci.Built, att oci.Attachments) (*Published, error) {
	if err := WriteTarball(ctx, t.File, b.Result, t.Tags); err != nil {
		return nil, err
	}
	p := &Published{Path: t.File}
	for _, tag := range t.Tags {
		p.Tags = append(p.Tags, tag.String())
	}
	if len(att.Referrers) > 0 {
		p.Dropped = append(p.Dropped, "SBOM")
	}
	return p, nil
}

// Path implements Local.
func (t *Tarball) Path() string   { return t.File }
func (t *Tarball) String() string { return "tar:" + t.File }

// OCIArchive writes an OCI layout packed in a tar file (buildx's
// type=oci,dest=FILE.tar; skopeo's oci-archive:FILE), with the SBOMs as
// untagged referrers in its index.
type OCIArchive struct {
	File string
	Tags []string
}

var _ Local = (*OCIArchive)(nil)

// Check implements Publisher.
func (a *OCIArchive) Check(int) error { return nil }

// Publish implements Publisher.
func (a *OCIArchive) Publish(ctx context.Context, b *oci.Built, att oci.Attachments) (*Published, error) {
	if err := WriteOCIArchive(ctx, a.File, b.Result, a.Tags, att.Referrers...); err != nil {
		return nil, err
	}
	return &Published{Path: a.File, Tags: a.Tags}, nil
}

// Path implements Local.
func (a *OCIArchive) Path() string   { return a.File }
func (a *OCIArchive) String() string { return "oci-archive:" + a.File }

// Multi publishes to each publisher in turn, like tee(1), stopping at the
// first error.
type Multi []Publisher

var _ Publisher = Multi(nil)

// Check implements Publisher.
func (m Multi) Check(platforms int) error {
	for _, p := range m {
		if err := p.Check(platforms); err != nil {
			return err
		}
	}
	return nil
}

// Publish implements Publisher; the result merges each one's.
func (m Multi) Publish(ctx context.Context, b *oci.Built, att oci.Attachments) (*Published, error) {
	all := &Published{}
	for _, p := range m {
		one, err := p.Publish(ctx, b, att)
		if err != nil {
			return nil, err
		}
		all.Refs = append(all.Refs, one.Refs...)
		all.Tags = append(all.Tags, one.Tags...)
		all.Dropped = append(all.Dropped, one.Dropped...)
	}
	return all, nil
}

func (m Multi) String() string {
	var s []string
	for _, p := range m {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// Target is what outputs are parsed against.
type Target struct {
	// Client pushes and resolves registry references.
	Client *registry.Client
	// Tags are the -t references.
	Tags []name.Tag
	// DefaultLayout is the OCI layout written when no output is given.
	DefaultLayout string
}

// Parse turns output specs (oci:DIR, tar:FILE, registry) and push into
// publishers, in order: the registry last when push is set, and the
// default layout when there is nothing else.
func Parse(specs []string, push bool, t Target) ([]Publisher, error) {
	var ids []string
	for _, tag := range t.Tags {
		ids = append(ids, tag.TagStr())
	}
	var out []Publisher
	for _, s := range specs {
		switch {
		case s == "registry":
			out = append(out, &Remote{Client: t.Client, Tags: t.Tags})
		case s == "daemon" || s == "load":
			out = append(out, &Daemon{Host: DaemonHost(), Tags: t.Tags})
		case strings.HasPrefix(s, "oci:") && len(s) > 4:
			out = append(out, &Layout{Dir: s[4:], Tags: ids})
		case strings.HasPrefix(s, "oci-archive:") && len(s) > 12:
			out = append(out, &OCIArchive{File: s[12:], Tags: ids})
		case strings.HasPrefix(s, "tar:") && len(s) > 4:
			out = append(out, &Tarball{File: s[4:], Tags: t.Tags})
		case strings.HasPrefix(s, "type="):
			p, pushed, err := buildxOutput(s, t, ids)
			if err != nil {
				return nil, err
			}
			push = push || pushed
			if p != nil {
				out = append(out, p)
			}
		default:
			return nil, fmt.Errorf("invalid --output %q; use oci:DIR, oci-archive:FILE, tar:FILE or registry (or buildx's type=oci|docker|registry|image,...)", s)
		}
	}
	if push {
		out = append(out, &Remote{Client: t.Client, Tags: t.Tags})
	}
	if len(out) == 0 {
		out = append(out, &Layout{Dir: filepath.Clean(t.DefaultLayout), Tags: ids})
	}
	return out, nil
}

// Pushes reports whether any publisher pushes to a registry.
func Pushes(ps []Publisher) bool {
	for _, p := range ps {
		if _, ok := p.(Repositories); ok {
			return true
		}
	}
	return false
}

// buildxOutput reads docker buildx's --output form (comma-separated
// key=value): type=oci,dest=DIR (a layout; an OCI archive when dest ends
// in .tar), type=docker,dest=FILE (a docker-archive), type=registry and
// type=image,push=true (a push to the -t references; push reports it).
func buildxOutput(spec string, t Target, ids []string) (p Publisher, push bool, err error) {
	kv := map[string]string{}
	for _, part := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, false, fmt.Errorf("invalid --output %q: %q is not KEY=VALUE", spec, part)
		}
		kv[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	dest := kv["dest"]
	for k := range kv {
		switch k {
		case "type", "dest", "push", "name", "oci-mediatypes", "compression", "force-compression":
		default:
			return nil, false, fmt.Errorf("invalid --output %q: packer does not know %s=; it takes type, dest and push", spec, k)
		}
	}
	if n := kv["name"]; n != "" {
		return nil, false, fmt.Errorf("invalid --output %q: name the image with -t %s instead of name=", spec, n)
	}
	switch typ := kv["type"]; typ {
	case "oci":
		if dest == "" {
			return nil, false, fmt.Errorf("invalid --output %q: type=oci needs dest=DIR (a layout) or dest=FILE.tar (an OCI archive)", spec)
		}
		if strings.HasSuffix(dest, ".tar") {
			return &OCIArchive{File: dest, Tags: ids}, false, nil
		}
		return &Layout{Dir: dest, Tags: ids}, false, nil
	case "docker":
		if dest == "" {
			return &Daemon{Host: DaemonHost(), Tags: t.Tags}, false, nil // buildx loads it, as --load
		}
		return &Tarball{File: dest, Tags: t.Tags}, false, nil
	case "registry":
		return nil, true, nil
	case "image":
		if kv["push"] != "true" {
			return nil, false, fmt.Errorf("invalid --output %q: packer keeps no image store of its own; add push=true, or use type=oci,dest=DIR", spec)
		}
		return nil, true, nil
	case "local", "tar":
		return nil, false, fmt.Errorf("invalid --output %q: packer writes images, not a root file system; use type=oci,dest=DIR (umoci unpack makes a root file system from it)", spec)
	default:
		return nil, false, fmt.Errorf("invalid --output %q: type=%s is not one packer writes; use oci, docker, registry or image,push=true", spec, typ)
	}
}
