// Package registry resolves base images (registry references and local OCI
// layouts) and publishes results to a registry, an OCI layout or a
// docker-archive tarball.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/packer-build/packer/oci"
)

// Client talks to registries with the user's credentials.
type Client struct {
	// Keychain resolves credentials; nil means authn.DefaultKeychain
	// (docker config.json, credsStore, credHelpers).
	Keychain authn.Keychain
	// Insecure lists registries (host[:port]) reached over plain HTTP.
	// localhost and 127.0.0.1 always are.
	Insecure []string
	// Transport, when set, replaces the default HTTP transport (tests);
	// the progress deadline and Retry-After waits still wrap it.
	Transport http.RoundTripper
	// Timeout is how long a registry may make no progress before a
	// request fails; 0 means DefaultTimeout.
	Timeout time.Duration
	// CAFile holds PEM certificates trusted for registries besides the
	// system's (a private CA); "" means the system's only (and
	// SSL_CERT_FILE, which Go reads).
	CAFile string
	// Mirrors are registries (host[:port], optionally with a path
	// prefix) Docker Hub pulls go through first, as docker's
	// registry-mirrors: the first that has the image serves it, else Docker
	// Hub does.
	Mirrors []string
	// Progress, when set, is told the bytes pushed of the image's blobs
	// to each repository, as they go.
	Progress func(repo string, complete, total int64)

	once  sync.Once
	rt    http.RoundTripper
	caErr error
}

func (c *Client) keychain() authn.Keychain {
	if c.Keychain != nil {
		return c.Keychain
	}
	return authn.NewMultiKeychain(EnvKeychain{}, authn.DefaultKeychain)
}

// EnvKeychain reads credentials for CI from PACKER_REGISTRY_USERNAME and
// PACKER_REGISTRY_PASSWORD, for the registry named by PACKER_REGISTRY (or
// for every registry when it is unset).
type EnvKeychain struct{}

var _ authn.Keychain = EnvKeychain{}

// Resolve implements authn.Keychain.
func (EnvKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	user, pass := os.Getenv("PACKER_REGISTRY_USERNAME"), os.Getenv("PACKER_REGISTRY_PASSWORD")
	if user == "" || pass == "" {
		return authn.Anonymous, nil
	}
	if reg := os.Getenv("PACKER_REGISTRY"); reg != "" && reg != r.RegistryStr() {
		return authn.Anonymous, nil
	}
	return authn.FromConfig(authn.AuthConfig{Username: user, Password: pass}), nil
}

// ParseReference parses a registry reference, marking it insecure when its
// registry is in c.Insecure.
func (c *Client) ParseReference(s string) (name.Reference, error) {
	ref, err := name.ParseReference(s)
	if err != nil {
		return nil, err
	}
	if c.isInsecure(ref.Context().RegistryStr()) {
		return name.ParseReference(s, name.Insecure)
	}
	return ref, nil
}

// ParseTag parses a tag reference (a digest reference is refused: a build
// makes a new digest).
func (c *Client) ParseTag(s string) (name.Tag, error) {
	var opts []name.Option
	if r, err := name.NewTag(s); err == nil && c.isInsecure(r.RegistryStr()) {
		opts = append(opts, name.Insecure)
	}
	t, err := name.NewTag(s, opts...)
	if err != nil {
		return name.Tag{}, fmt.Errorf("invalid tag %q: %w; use NAME[:TAG] with lowercase letters, digits and . _ - /", s, err)
	}
	return t, nil
}

func (c *Client) isInsecure(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" || h == "127.0.0.1" || h == "::1" {
		return true
	}
	for _, i := range c.Insecure {
		if i == host || i == h {
			return true
		}
	}
	return false
}

// Check reports a client setting that cannot work (an unreadable CA
// file), before anything is built.
func (c *Client) Check() error {
	c.transport()
	return c.caErr
}

// RemoteOptions are the go-containerregistry options for reaching
// registries as this client does: credentials from its keychain (packer's
// environment credentials, then the docker config and credential helpers).
func (c *Client) RemoteOptions(ctx context.Context) []remote.Option {
	c.transport() // reads CAFile once
	return []remote.Option{
		remote.WithContext(ctx), remote.WithAuthFromKeychain(c.keychain()),
		remote.WithTransport(c.transport()),
		remote.WithRetryBackoff(retryBackoff), remote.WithRetryStatusCodes(retryStatus...),
	}
}

// LayoutPrefix marks a local OCI layout reference: oci:DIR[:TAG].
const LayoutPrefix = "oci:"

// SplitLayoutRef splits "oci:DIR[:TAG]" into DIR and TAG.
func SplitLayoutRef(s string) (dir, tag string) {
	s = strings.TrimPrefix(s, LayoutPrefix)
	if i := strings.LastIndex(s, ":"); i > 0 && !strings.ContainsAny(s[i+1:], `/\`) {
		return s[:i], s[i+1:]
	}
	return s, ""
}

// Resolve implements builder.BaseResolver for registry references and local
// OCI layouts.
func (c *Client) Resolve(ctx context.Context, ref string, p v1.Platform) (v1.Image, *oci.BaseInfo, error) {
	if strings.HasPrefix(ref, LayoutPrefix) {
		return resolveLayout(ref, p)
	}
	r, err := c.ParseReference(ref)
	if err != nil {
		return nil, nil, fmt.Errorf("invalid base image %q: %w", ref, err)
	}
	desc, err := c.getThroughMirrors(ctx, r, p)
	if err != nil {
		err = explain(fmt.Sprintf("pulling base image %s", ref), r.Context().RegistryStr(), err)
		if r.Context().RegistryStr() == name.DefaultRegistry && len(c.Mirrors) == 0 {
			err = &hinted{err.Error() + "; the default bases come from Docker Hub: choose one you can reach with --base, PACKER_BASE or packer.toml's base, or pull through a mirror with --registry-mirror HOST", err}
		}
		return nil, nil, err
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, nil, err
		}
		img, err = imageForPlatform(idx, p, ref)
		if err != nil {
			return nil, nil, err
		}
	} else {
		img, err = desc.Image()
		if err != nil {
			return nil, nil, err
		}
		if err := checkPlatform(img, p, ref); err != nil {
			return nil, nil, err
		}
	}
	d, err := img.Digest()
	if err != nil {
		return nil, nil, err
	}
	return img, &oci.BaseInfo{Name: r.Name(), Digest: d}, nil
}

func resolveLayout(ref string, p v1.Platform) (v1.Image, *oci.BaseInfo, error) {
	dir, tag := SplitLayoutRef(ref)
	lp, err := layout.FromPath(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("base %s: %q is not an OCI layout (%v); point --base at a directory written by packer, skopeo or crane", ref, dir, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		return nil, nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, nil, fmt.Errorf("reading OCI layout %s: %w", dir, err)
	}
	var found []v1.Descriptor
	var names []string
	for _, d := range im.Manifests {
		n := d.Annotations["org.opencontainers.image.ref.name"]
		if d.ArtifactType != "" && n == "" {
			continue // a referrer (an SBOM, a signature) packer stored beside the image
		}
		names = append(names, n)
		if tag == "" || n == tag {
			found = append(found, d)
		}
	}
	if len(found) != 1 {
		if tag == "" {
			return nil, nil, fmt.Errorf("OCI layout %s holds %d images; name one as oci:%s:TAG (tags: %s)", dir, len(found), dir, strings.Join(names, ", "))
		}
		return nil, nil, fmt.Errorf("OCI layout %s has no image tagged %q (tags: %s)", dir, tag, strings.Join(names, ", "))
	}
	d := found[0]
	var img v1.Image
	if d.MediaType.IsIndex() {
		sub, err := idx.ImageIndex(d.Digest)
		if err != nil {
			return nil, nil, err
		}
		if img, err = imageForPlatform(sub, p, ref); err != nil {
			return nil, nil, err
		}
	} else {
		if img, err = idx.Image(d.Digest); err != nil {
			return nil, nil, err
		}
		if err := checkPlatform(img, p, ref); err != nil {
			return nil, nil, err
		}
	}
	dig, err := img.Digest()
	if err != nil {
		return nil, nil, err
	}
	// The layout's directory is machine-specific: record only its tag so
	// the same base gives the same image anywhere.
	return img, &oci.BaseInfo{Name: d.Annotations["org.opencontainers.image.ref.name"], Digest: dig}, nil
}

func imageForPlatform(idx v1.ImageIndex, p v1.Platform, ref string) (v1.Image, error) {
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var have []string
	for _, d := range im.Manifests {
		if d.Platform == nil {
			continue
		}
		have = append(have, d.Platform.String())
		if d.Platform.Satisfies(p) {
			return idx.Image(d.Digest)
		}
	}
	return nil, fmt.Errorf("base image %s has no %s image (it has %s); choose --platform from those or another --base", ref, p.String(), strings.Join(have, ", "))
}

func checkPlatform(img v1.Image, p v1.Platform, ref string) error {
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading base image %s config: %w", ref, err)
	}
	got := v1.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}
	if cfg.OS == "" && cfg.Architecture == "" {
		return nil
	}
	if !got.Satisfies(p) {
		return fmt.Errorf("base image %s is for %s, not %s; choose --platform %s or a multi-platform base", ref, got.String(), p.String(), got.String())
	}
	return nil
}

// explain turns transport errors into one line naming the cause and a fix.
func explain(what, reg string, err error) error {
	var terr *transport.Error
	if errors.As(err, &terr) {
		switch terr.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return &hinted{fmt.Sprintf("%s: %s refused the credentials (HTTP %d); log in with `packer login %s -u USER --password-stdin` (or docker login: both write the docker config packer reads), or configure a credential helper", what, reg, terr.StatusCode, reg), err}
		case http.StatusNotFound:
			return &hinted{fmt.Sprintf("%s: not found on %s; check the name and tag", what, reg), err}
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	var unknown x509.UnknownAuthorityError
	var verify *tls.CertificateVerificationError
	if errors.As(err, &unknown) || errors.As(err, &verify) && errors.As(verify.Err, &unknown) {
		return &hinted{fmt.Sprintf("%s: %s's certificate is not signed by a certificate authority this machine trusts (%v): pass --registry-ca FILE with its CA in PEM, or set SSL_CERT_FILE", what, reg, err), err}
	}
	var herr x509.HostnameError
	if errors.As(err, &herr) {
		return &hinted{fmt.Sprintf("%s: %s's certificate is for another name (%v): reach it by a name its certificate holds", what, reg, err), err}
	}
	var stall *StallError
	if errors.As(err, &stall) {
		return &hinted{fmt.Sprintf("%s: %v", what, stall), err}
	}
	var nerr net.Error
	var oerr *net.OpError
	if errors.As(err, &oerr) || errors.As(err, &nerr) {
		return &hinted{fmt.Sprintf("%s: cannot reach registry %s: %v; check the address and that it is running (plain HTTP registries need --insecure-registry %s)", what, reg, err, reg), err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// hinted is an error whose message explains and hints, and which keeps
// the original (a *transport.Error, a net.Error) reachable for errors.As.
type hinted struct {
	msg string
	err error
}

func (h *hinted) Error() string { return h.msg }
func (h *hinted) Unwrap() error { return h.err }

// IsRegistryError reports whether err came from talking to a registry:
// an answer it refused (401, 404, 5xx after retries), a stall, a
// certificate, a push whose tags moved in part. The CLI exits 3 for
// these, apart from build failures.
func IsRegistryError(err error) bool {
	var h *hinted
	var terr *transport.Error
	var stall *StallError
	var tag *TagError
	return errors.As(err, &h) || errors.As(err, &terr) || errors.As(err, &stall) || errors.As(err, &tag)
}

// getThroughMirrors fetches r's descriptor: for a Docker Hub reference from
// the first mirror that has it (same repository path, under the mirror's
// own prefix), else from r's own registry.
func (c *Client) getThroughMirrors(ctx context.Context, r name.Reference, p v1.Platform) (*remote.Descriptor, error) {
	opts := append(c.RemoteOptions(ctx), remote.WithPlatform(p))
	if r.Context().RegistryStr() == name.DefaultRegistry {
		for _, m := range c.Mirrors {
			mirrored, err := c.ParseReference(strings.TrimSuffix(m, "/") + "/" + r.Context().RepositoryStr() + refSuffix(r))
			if err != nil {
				continue
			}
			if desc, err := remote.Get(mirrored, opts...); err == nil {
				return desc, nil
			}
		}
	}
	return remote.Get(r, opts...)
}

// refSuffix is ":TAG" or "@DIGEST" of r.
func refSuffix(r name.Reference) string {
	if d, ok := r.(name.Digest); ok {
		return "@" + d.DigestStr()
	}
	return ":" + r.Identifier()
}
