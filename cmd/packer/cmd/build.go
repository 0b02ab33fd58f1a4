package cmd

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/buildargs"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/registry"
	"github.com/packer-build/packer/sign"
)

// DefaultOutputDir is where `packer build DIR` writes an OCI layout when no
// output is given: DIR/.packer/oci (always left out of the context).
const DefaultOutputDir = ".packer/oci"

type buildOptions struct {
	planOptions
	tags      []string
	push      bool
	outputs   []string
	platforms string
	insecure  []string
	cacheDir  string
	noCache   bool
	secrets   []string
	sboms     string
	sbomDir   string
	signKey   string
	keyless   bool
	idToken   string
	fulcioURL string
	rekorURL  string
	tlog      bool
}

type output struct {
	kind string // "oci", "tar", "registry"
	path string
}

func newBuild(ro *rootOptions) *cobra.Command {
	o := &buildOptions{}
	c := &cobra.Command{
		Use:   "build [DIR]",
		Short: "Build an image from the app in DIR (default .) and print its digest",
		Long: `Build an image from the app in DIR (default .) and print its digest.

With no -o and no --push the image is written as an OCI layout to
DIR/` + DefaultOutputDir + ` (tagged by -t, default "latest").

Outputs (-o, repeatable):
  oci:DIR     an OCI image layout (skopeo, umoci, crane and podman read it)
  tar:FILE    a docker-archive that ` + "`docker load`" + ` accepts (one platform)
  registry    push to every -t reference (same as --push)`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			return o.run(c, ro, dir)
		},
	}
	o.planOptions.addFlags(c)
	f := c.Flags()
	f.StringArrayVarP(&o.tags, "tag", "t", nil, "name and tag, NAME[:TAG] (repeatable); registry references for --push")
	f.BoolVar(&o.push, "push", false, "push to the registries named by -t")
	f.StringArrayVarP(&o.outputs, "output", "o", nil, "where to write the image: oci:DIR, tar:FILE or registry (repeatable)")
	f.StringVar(&o.platforms, "platform", "", "target platforms, comma separated (e.g. linux/amd64,linux/arm64); several give an image index (default: this machine's)")
	f.StringArrayVar(&o.insecure, "insecure-registry", nil, "registry host[:port] to reach over plain HTTP (localhost and 127.0.0.1 always are)")
	f.StringVar(&o.cacheDir, "cache-dir", "", "layer cache directory (default: $XDG_CACHE_HOME/packer)")
	f.BoolVar(&o.noCache, "no-cache", false, "run every step even when its inputs are unchanged")
	f.StringVar(&o.sboms, "sbom", "spdx,cyclonedx", "SBOM formats attached to each image as OCI referrers: spdx, cyclonedx, or none")
	f.StringVar(&o.sbomDir, "sbom-dir", "", "also write the SBOM files to this directory")
	f.StringVar(&o.signKey, "sign-key", "", "sign pushed images with this cosign private key (password in COSIGN_PASSWORD); cosign verify --key cosign.pub checks it")
	f.BoolVar(&o.keyless, "sign-keyless", false, "sign pushed images keyless: an OIDC identity token (GitHub Actions, --identity-token or SIGSTORE_ID_TOKEN) buys a short-lived certificate from Fulcio; the signatures are recorded in Rekor")
	f.StringVar(&o.idToken, "identity-token", "", "OIDC identity token for --sign-keyless, or a file holding it")
	f.StringVar(&o.fulcioURL, "fulcio-url", sign.DefaultFulcioURL, "Fulcio certificate authority for --sign-keyless")
	f.StringVar(&o.rekorURL, "rekor-url", sign.DefaultRekorURL, "Rekor transparency log signatures are recorded in")
	f.BoolVar(&o.tlog, "tlog-upload", true, "record signatures in the Rekor log: on by default with --sign-keyless, off with --sign-key unless given (without it, verifiers need --insecure-ignore-tlog)")
	f.StringArrayVar(&o.secrets, "secret", nil, "id=NAME,env=VAR or id=NAME,src=FILE: visible to build steps only, never written to the image, plan, cache key or log")
	return c
}

func (o *buildOptions) run(c *cobra.Command, ro *rootOptions, dir string) error {
	log := ro.logWriter(c)
	client := &registry.Client{Insecure: o.insecure}

	// Everything the user typed is checked before any work is done.
	p, settings, err := o.makePlan(c, dir)
	if err != nil {
		return err
	}
	platformSpec := o.platforms
	if !c.Flags().Changed("platform") && settings.Platforms != nil {
		platformSpec = strings.Join(settings.Platforms, ",")
	}
	platforms, err := ParsePlatforms(platformSpec)
	if err != nil {
		return err
	}
	formats, err := parseSBOMFormats(o.sboms)
	if err != nil {
		return err
	}
	var signer registry.Signer
	var signKey *sign.Signer
	if o.signKey != "" || o.keyless {
		flag := "--sign-key"
		if o.keyless {
			flag = "--sign-keyless"
		}
		if o.signKey != "" && o.keyless {
			return fmt.Errorf("--sign-key and --sign-keyless both given; sign with one of them")
		}
		pushes := false
		for _, out := range outs0(o.outputs, o.push) {
			pushes = pushes || out == "registry"
		}
		if !pushes {
			return fmt.Errorf("%s signs images pushed to a registry (cosign verifies them there); add --push", flag)
		}
	}
	if o.signKey != "" {
		key, err := sign.LoadKey(o.signKey, []byte(os.Getenv("COSIGN_PASSWORD")))
		if err != nil {
			return err
		}
		signKey = sign.KeySigner(key)
		if c.Flags().Changed("tlog-upload") && o.tlog {
			signKey.Tlog = &sign.Rekor{URL: o.rekorURL}
		}
	}
	if o.keyless {
		// Where the token comes from is checked now, so a build that cannot
		// sign fails before it starts; the token (GitHub's lives minutes)
		// and the certificate (ten minutes) are fetched after the build.
		if _, err := sign.TokenSource(o.idToken, os.Getenv); err != nil {
			return err
		}
	}
	var secrets buildargs.Secrets
	for _, s := range o.secrets {
		sec, err := buildargs.ParseSecret(s, os.LookupEnv)
		if err != nil {
			return err
		}
		secrets = append(secrets, sec)
	}
	var tags []name.Tag
	var tagIDs []string
	for _, t := range o.tags {
		tag, err := client.ParseTag(t)
		if err != nil {
			return err
		}
		tags = append(tags, tag)
		tagIDs = append(tagIDs, tag.TagStr())
	}
	outs, err := parseOutputs(o.outputs, o.push, dir)
	if err != nil {
		return err
	}
	for _, out := range outs {
		switch out.kind {
		case "registry":
			if len(tags) == 0 {
				return fmt.Errorf("--push needs at least one -t REGISTRY/NAME[:TAG] to push to")
			}
		case "tar":
			if len(platforms) > 1 {
				return fmt.Errorf("tar:%s holds one platform's image; build one --platform, or use oci:DIR for %d platforms", out.path, len(platforms))
			}
			if len(tags) == 0 {
				return fmt.Errorf("tar:%s needs a name for docker load; pass -t NAME[:TAG]", out.path)
			}
		case "oci":
			if err := checkLayoutDest(out.path); err != nil {
				return err
			}
		}
	}

	// Outputs inside the context must not feed the next build.
	for _, out := range outs {
		if rel, ok := inside(dir, out.path); ok {
			p.Exclude = append(p.Exclude, rel)
		}
	}
	created, createdFrom, err := creationTime(dir)
	if err != nil {
		return err
	}
	cacheDir := o.cacheDir
	if cacheDir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("finding a cache directory: %w; pass --cache-dir", err)
		}
		cacheDir = filepath.Join(base, "packer")
	}
	store, err := layers.NewStore(cacheDir)
	if err != nil {
		return err
	}
	fmt.Fprintf(log, "packer: %s app in %s → %s on %s; created %s (%s)\n", p.Provider, dir, platformList(platforms), p.Base, created.UTC().Format(time.RFC3339), createdFrom)
	fmt.Fprintf(log, "packer: left out of the context: .dockerignore, %s, and at any depth .git, .env*, SSH keys, private keys and credential files (each one found is named)\n", strings.Join(append([]string{".packer"}, p.Exclude...), ", "))
	if short := secrets.Unguarded(); len(short) > 0 {
		fmt.Fprintf(log, "packer: warning: secrets %s are shorter than %d bytes; the leak guard cannot look for them\n", strings.Join(short, ", "), buildargs.MinGuardedLen)
	}
	secretEnv, unmount, err := secrets.Mount()
	if err != nil {
		return fmt.Errorf("preparing secrets for the build steps: %w", err)
	}
	defer unmount()
	redactor := secrets.Redact(prefixWriter(log))
	defer redactor.Flush()

	start := time.Now()
	res, rep, err := builder.Build(c.Context(), dir, p, builder.Options{
		Platforms: platforms,
		Store:     store,
		NoCache:   o.noCache,
		Created:   created,
		Resolve:   client.Resolve,
		Labels:    gitLabels(dir),
		Version:   version(),
		Log:       redactor,
		SecretEnv: secretEnv,
	})
	if err != nil {
		return err
	}
	if err := guard(res, rep, secrets, platforms, store); err != nil {
		return err
	}
	referrers, sbomDocs, err := makeSBOMs(res, platforms, formats, o.sbomDir, created, firstName(tags, dir), store, log)
	if err != nil {
		return err
	}
	if o.keyless {
		idToken, from, err := sign.IdentityToken(c.Context(), o.idToken, os.Getenv)
		if err != nil {
			return err
		}
		fmt.Fprintf(log, "packer: keyless signing with the OIDC token from %s\n", from)
		var tlog *sign.Rekor
		if o.tlog {
			tlog = &sign.Rekor{URL: o.rekorURL}
		}
		if signKey, err = sign.Keyless(c.Context(), o.fulcioURL, idToken, tlog); err != nil {
			return err
		}
		id, iss := signKey.Identity()
		fmt.Fprintf(log, "packer: Fulcio certified %s (issuer %s)\n", id, iss)
	}
	if signKey != nil {
		signer = signerFor(c.Context(), signKey, res, sbomDocs, sign.BuildInfo{
			BuilderVersion: version(), Provider: p.Provider, Platforms: strings.Split(platformList(platforms), ","),
			BuildArgNames: slices.Sorted(maps.Keys(p.BuildArgs)), Created: created,
			Source: gitLabels(dir)["org.opencontainers.image.source"], Revision: gitLabels(dir)["org.opencontainers.image.revision"],
			BaseName: baseName(res), BaseDigest: baseDigest(res),
		})
	}
	digest, err := res.Digest()
	if err != nil {
		return err
	}
	for _, pl := range platforms {
		for _, l := range rep.Layers[pl.String()] {
			state := "new"
			if l.Cached {
				state = "cached"
			}
			fmt.Fprintf(log, "packer: %s layer %-8s %s %8s %s\n", pl.String(), l.Name, l.Digest.Hex[:12], humanSize(l.Size), state)
		}
	}
	fmt.Fprintf(log, "packer: built %s in %s (%d steps run, %d skipped)\n", digest, time.Since(start).Round(time.Millisecond), rep.StepsRun, rep.StepsCached)

	var results []string
	for _, out := range outs {
		switch out.kind {
		case "oci":
			if err := registry.WriteLayout(out.path, res, tagIDs, referrers...); err != nil {
				return err
			}
			fmt.Fprintf(log, "packer: wrote OCI layout %s\n", out.path)
		case "tar":
			if err := registry.WriteTarball(out.path, res, tags); err != nil {
				return err
			}
			fmt.Fprintf(log, "packer: wrote docker-archive %s (docker load -i %s)\n", out.path, out.path)
			if len(referrers) > 0 && o.sbomDir == "" {
				fmt.Fprintf(log, "packer: a docker-archive cannot carry the SBOM; pass --sbom-dir DIR to keep it\n")
			}
		case "registry":
			pushed, err := client.PushSigned(c.Context(), res, tags, signer, referrers...)
			if err != nil {
				return err
			}
			for _, d := range pushed {
				results = append(results, d.String())
			}
			for _, t := range tags {
				fmt.Fprintf(log, "packer: pushed %s\n", t.String())
			}
			if signer != nil {
				how := "--key cosign.pub"
				if signKey.Cert != nil {
					id, iss := signKey.Identity()
					how = fmt.Sprintf("--certificate-identity %s --certificate-oidc-issuer %s", id, iss)
				}
				fmt.Fprintf(log, "packer: signed %s (cosign verify %s)\n", digest, how)
			}
		}
	}
	if len(results) == 0 {
		results = []string{digest.String()}
	}
	for _, r := range results {
		fmt.Fprintln(c.OutOrStdout(), r)
	}
	return nil
}

// guard fails the build, before anything is published, when a secret's
// value appears in a layer packer wrote or in an image config or manifest;
// the leaking blob is removed from the cache too.
func guard(res builder.Result, rep *builder.Report, secrets buildargs.Secrets, platforms []v1.Platform, store *layers.Store) error {
	if len(secrets) == 0 {
		return nil
	}
	images := map[string]v1.Image{}
	switch r := res.(type) {
	case v1.Image:
		images[platforms[0].String()] = r
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
			images[d.Platform.String()] = img
		}
	}
	for _, pl := range platforms {
		ours := map[v1.Hash]string{}
		for _, l := range rep.Layers[pl.String()] {
			ours[l.Digest] = l.Name
		}
		if err := secrets.Guard(images[pl.String()], ours); err != nil {
			var leak *buildargs.LeakError
			if errors.As(err, &leak) {
				for d, name := range ours {
					if "layer "+name == leak.Where {
						store.Remove(d)
					}
				}
			}
			return err
		}
	}
	return nil
}

// outs0 lists output kinds as the flags give them (for early checks).
func outs0(specs []string, push bool) []string {
	var out []string
	for _, s := range specs {
		k, _, _ := strings.Cut(s, ":")
		out = append(out, k)
	}
	if push {
		out = append(out, "registry")
	}
	return out
}

func parseOutputs(specs []string, push bool, dir string) ([]output, error) {
	var outs []output
	for _, s := range specs {
		switch {
		case s == "registry":
			outs = append(outs, output{kind: "registry"})
		case strings.HasPrefix(s, "oci:") && len(s) > 4:
			outs = append(outs, output{kind: "oci", path: s[4:]})
		case strings.HasPrefix(s, "tar:") && len(s) > 4:
			outs = append(outs, output{kind: "tar", path: s[4:]})
		default:
			return nil, fmt.Errorf("invalid --output %q; use oci:DIR, tar:FILE or registry", s)
		}
	}
	if push {
		outs = append(outs, output{kind: "registry"})
	}
	if len(outs) == 0 {
		outs = append(outs, output{kind: "oci", path: filepath.Join(dir, DefaultOutputDir)})
	}
	return outs, nil
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

// inside returns p relative to dir when p lies inside dir.
func inside(dir, p string) (string, bool) {
	ad, err1 := filepath.Abs(dir)
	ap, err2 := filepath.Abs(p)
	if err1 != nil || err2 != nil {
		return "", false
	}
	rel, err := filepath.Rel(ad, ap)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	return filepath.ToSlash(rel), true
}

var knownArch = map[string]bool{"amd64": true, "arm64": true, "arm": true, "386": true, "ppc64le": true, "s390x": true, "riscv64": true}

// ParsePlatforms parses a comma-separated --platform list; empty means
// linux on this machine's architecture.
func ParsePlatforms(s string) ([]v1.Platform, error) {
	if strings.TrimSpace(s) == "" {
		return []v1.Platform{{OS: "linux", Architecture: runtime.GOARCH}}, nil
	}
	var out []v1.Platform
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		p, err := v1.ParsePlatform(part)
		if err != nil || p.OS == "" || p.Architecture == "" || strings.Count(part, "/") < 1 {
			return nil, fmt.Errorf("invalid --platform %q: want OS/ARCH[/VARIANT], e.g. linux/amd64,linux/arm64", part)
		}
		if p.OS != "linux" {
			return nil, fmt.Errorf("invalid --platform %q: packer builds linux images; use linux/ARCH", part)
		}
		if !knownArch[p.Architecture] {
			return nil, fmt.Errorf("invalid --platform %q: unknown architecture %q; use one of amd64, arm64, arm, 386, ppc64le, s390x, riscv64", part, p.Architecture)
		}
		if seen[p.String()] {
			return nil, fmt.Errorf("--platform lists %s twice", p.String())
		}
		seen[p.String()] = true
		out = append(out, *p)
	}
	return out, nil
}

func platformList(ps []v1.Platform) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}

// creationTime is SOURCE_DATE_EPOCH, else the git HEAD commit time of the
// context, else the Unix epoch.
func creationTime(dir string) (time.Time, string, error) {
	if v, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && strings.TrimSpace(v) != "" {
		sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || sec < 0 {
			return time.Time{}, "", fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970; set it to e.g. $(git log -1 --format=%%ct) or unset it", v)
		}
		return time.Unix(sec, 0).UTC(), "SOURCE_DATE_EPOCH", nil
	}
	if out, err := git(dir, "log", "-1", "--format=%ct"); err == nil {
		if sec, err := strconv.ParseInt(out, 10, 64); err == nil {
			return time.Unix(sec, 0).UTC(), "git HEAD commit time", nil
		}
	}
	return time.Unix(0, 0).UTC(), "no SOURCE_DATE_EPOCH, no git: constant", nil
}

func git(dir string, args ...string) (string, error) {
	cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Run(); err != nil {
		return "", err
	}
	return strings.TrimSpace(out.String()), nil
}

// gitLabels are the OCI source and revision labels when dir is in a git
// work tree with a commit.
func gitLabels(dir string) map[string]string {
	labels := map[string]string{}
	if rev, err := git(dir, "rev-parse", "HEAD"); err == nil && rev != "" {
		labels["org.opencontainers.image.revision"] = rev
	}
	if src, err := git(dir, "config", "--get", "remote.origin.url"); err == nil && src != "" {
		if u, err := url.Parse(src); err == nil && u.User != nil {
			u.User = nil // never publish credentials embedded in a remote URL
			src = u.String()
		}
		labels["org.opencontainers.image.source"] = src
	}
	return labels
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1fkB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}
