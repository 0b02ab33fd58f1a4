package cmd

import (
	"bytes"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/packer-build/packer/buildargs"
	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/config"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/oci"
	"github.com/packer-build/packer/pipeline"
	"github.com/packer-build/packer/publish"
	"github.com/packer-build/packer/registry"
	"github.com/packer-build/packer/scaleout"
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
	registry  registryFlags
	cacheDir  string
	noCache   bool
	secrets   []string
	sboms     string
	sbomDir   string
	sbomSplit bool
	signKey   string
	keyless   bool
	idToken   string
	fulcioURL string
	rekorURL  string
	tlog      bool

	metadataFile, iidFile string
	pull, load            bool
	progress              string
	cacheFrom, cacheTo    string
	compression           string
	client                *registry.Client
	onPush                func(repo string, complete, total int64)
	cacheMax              string
	cacheDirUsed          string
	cacheMaxSet           bool

	builderName  string // --builder: packer or buildkit
	buildkitAddr string
	buildkit     *scaleout.BuildKit

	tlogSet     bool   // --tlog-upload given explicitly
	createdFrom string // where the creation time came from, for the log
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
  oci:DIR          an OCI image layout (skopeo, umoci, crane and podman read it)
  oci-archive:FILE the layout in a tar file (skopeo's oci-archive:FILE)
  tar:FILE         a docker-archive that ` + "`docker load`" + ` accepts (one platform)
  registry         push to every -t reference (same as --push)
  daemon           load into the local Docker Engine or podman (same as --load)
docker buildx's forms work too: type=oci,dest=DIR (dest=FILE.tar: an OCI
archive), type=docker,dest=FILE, type=registry, type=image,push=true.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			o.tlogSet = c.Flags().Changed("tlog-upload")
			return o.run(c, ro, dir)
		},
	}
	o.planOptions.addFlags(c, true)
	f := c.Flags()
	f.StringArrayVarP(&o.tags, "tag", "t", nil, "name and tag, NAME[:TAG] (repeatable); registry references for --push")
	f.BoolVar(&o.push, "push", false, "push to the registries named by -t")
	f.StringArrayVarP(&o.outputs, "output", "o", nil, "where to write the image: oci:DIR, oci-archive:FILE, tar:FILE, registry, or buildx's type=oci|docker|registry|image,... (repeatable)")
	o.registry.add(f)
	f.StringVar(&o.cacheDir, "cache-dir", "", "layer cache directory (default: $XDG_CACHE_HOME/packer)")
	f.BoolVar(&o.noCache, "no-cache", false, "run every step even when its inputs are unchanged")
	f.StringVar(&o.builderName, "builder", "packer", "what runs the build: packer (daemonless, on this machine) or buildkit (the same plan solved by a BuildKit daemon: --buildkit-addr); the result gets the same SBOMs, signatures and outputs")
	f.StringVar(&o.buildkitAddr, "buildkit-addr", "", "BuildKit daemon for --builder buildkit: tcp://HOST:PORT, unix:///PATH, kube-pod://POD?namespace=NS, docker-container://NAME (default $BUILDKIT_HOST)")
	f.StringVar(&o.cacheFrom, "cache-from", "", "registry:REPO:TAG (or type=registry,ref=REPO:TAG): use the step and layer cache a --cache-to build left there; on a fresh CI runner, steps whose inputs match are skipped and their layers fetched")
	f.StringVar(&o.cacheTo, "cache-to", "", "registry:REPO:TAG (or type=registry,ref=REPO:TAG): after the build, merge the step and layer cache it used into that artifact (per key the last writer wins)")
	f.StringVar(&o.compression, "compression", "", "layer compression: gzip (the default; everything reads it) or zstd (faster, smaller; containerd ≥ 1.5, podman, Docker ≥ 23 read it); also PACKER_COMPRESSION")
	f.StringVar(&o.cacheMax, "cache-max", "", "after the build, remove the cache's least recently used entries beyond this size (default "+DefaultCacheMax+", also PACKER_CACHE_MAX; 0 keeps everything); what the build used stays")
	f.StringVar(&o.sboms, "sbom", "spdx,cyclonedx", "SBOM formats attached to each image as OCI referrers: spdx, cyclonedx, or none")
	f.StringVar(&o.sbomDir, "sbom-dir", "", "also write the SBOM files to this directory (one complete document per format)")
	f.BoolVar(&o.sbomSplit, "sbom-split", true, "attach each SBOM as the image's document plus one per layer, which a rebuild finds in the registry already (packer sbom joins them); false attaches one complete document, for tools that read only the first blob")
	f.StringVar(&o.signKey, "sign-key", "", "sign pushed images with this cosign private key (password in COSIGN_PASSWORD); cosign verify --key cosign.pub checks it")
	f.BoolVar(&o.keyless, "sign-keyless", false, "sign pushed images keyless: an OIDC identity token (GitHub Actions, --identity-token or SIGSTORE_ID_TOKEN) buys a short-lived certificate from Fulcio; the signatures are recorded in Rekor")
	f.StringVar(&o.idToken, "identity-token", "", "OIDC identity token for --sign-keyless, or a file holding it")
	f.StringVar(&o.fulcioURL, "fulcio-url", sign.DefaultFulcioURL, "Fulcio certificate authority for --sign-keyless")
	f.StringVar(&o.rekorURL, "rekor-url", sign.DefaultRekorURL, "Rekor transparency log signatures are recorded in")
	f.BoolVar(&o.tlog, "tlog-upload", true, "record signatures in the Rekor log: on by default with --sign-keyless, off with --sign-key unless given (without it, verifiers need --insecure-ignore-tlog)")
	f.StringVar(&o.progress, "progress", ProgressAuto, "how the build shows itself on stderr: auto (tty on a terminal, else plain), tty (a live line with each step's timer and push bars), plain (log lines; a heartbeat after 10 s of silence), json (one event per line), quiet (as -q); every mode but quiet ends with a summary")
	f.BoolVar(&o.load, "load", false, "load the image into the local Docker Engine or podman service (DOCKER_HOST, default unix:///var/run/docker.sock), as docker load does; one platform, needs -t")
	f.BoolVar(&o.pull, "pull", false, "resolve the base's tag again (packer does on every build; accepted for docker buildx command lines)")
	f.StringVar(&o.metadataFile, "metadata-file", "", "write the build's result as JSON (docker buildx's keys: containerimage.digest, containerimage.descriptor, containerimage.config.digest, image.name; and packer's: layers reused or new, SBOMs, signature)")
	f.StringVar(&o.iidFile, "iidfile", "", "write the image ID (the config digest; the index digest for several platforms) to this file")
	f.StringArrayVar(&o.secrets, "secret", nil, "id=NAME,env=VAR or id=NAME,src=FILE: visible to build steps only, never written to the image, plan, cache key or log")
	return c
}

func (o *buildOptions) run(c *cobra.Command, ro *rootOptions, dir string) error {
	mode, err := o.progressMode(c, ro)
	if err != nil {
		return err
	}
	log := io.Writer(io.Discard)
	var prog *progress
	if mode != ProgressQuiet {
		prog = newProgress(mode, c.ErrOrStderr())
		log = prog
		prog.start()
		defer prog.finish()
		o.onPush = func(repo string, complete, total int64) {
			prog.event(oci.Event{Type: "push", Ref: repo, Complete: complete, Total: total, Time: time.Now()})
		}
	}
	start := time.Now()
	req, err := o.request(c, dir)
	if err != nil {
		return err
	}
	if prog != nil {
		req.Events = prog.event
	}
	cacheFrom, err := cacheRef("--cache-from", o.cacheFrom)
	if err != nil {
		return err
	}
	cacheTo, err := cacheRef("--cache-to", o.cacheTo)
	if err != nil {
		return err
	}
	if o.buildkit != nil {
		defer o.buildkit.Close()
		// BuildKit's own registry cache (type=registry, mode=max).
		if cacheFrom != "" {
			o.buildkit.CacheFrom = append(o.buildkit.CacheFrom, map[string]string{"ref": cacheFrom})
		}
		if cacheTo != "" {
			o.buildkit.CacheTo = append(o.buildkit.CacheTo, map[string]string{"ref": cacheTo, "mode": "max"})
		}
		cacheFrom, cacheTo = "", ""
	}
	if cacheFrom != "" {
		useRegistryCache(c.Context(), log, o.client, req.Store, cacheFrom)
	}
	fmt.Fprintf(log, "packer: %s app in %s → %s on %s; created %s (%s)\n", req.Plan.Provider, dir, platformList(req.Platforms), req.Plan.Base, req.Created.UTC().Format(time.RFC3339), o.createdFrom)
	fmt.Fprintf(log, "packer: left out of the context: .dockerignore, %s, and at any depth .git, .env*, SSH keys, private keys and credential files (each one found is named)\n", strings.Join(append([]string{".packer"}, req.Plan.Exclude...), ", "))
	for _, e := range req.Plan.Evidence {
		if strings.HasPrefix(e, "warning: ") {
			fmt.Fprintf(log, "packer: %s\n", e)
		}
	}
	req.Log = prefixWriter(log)
	res, err := pipeline.Run(c.Context(), *req)
	if err != nil {
		return err
	}
	var results []string
	for _, p := range res.Published {
		for _, d := range p.Refs {
			results = append(results, d.String())
		}
	}
	if len(results) == 0 {
		results = []string{res.Digest.String()}
	}
	if err := o.writeResults(res); err != nil {
		return err
	}
	if cacheTo != "" {
		saveRegistryCache(c.Context(), log, o.client, req.Store, cacheTo)
	}
	if removed, err := limitCache(o.cacheDirUsed, o.cacheMax, o.cacheMaxSet, start); err != nil {
		fmt.Fprintf(log, "packer: warning: keeping the cache under %s: %v\n", o.cacheMax, err)
	} else if len(removed) > 0 {
		var freed int64
		for _, e := range removed {
			freed += e.Size
		}
		fmt.Fprintf(log, "packer: cache over %s: removed %d least recently used entries (%s)\n", o.cacheMax, len(removed), units.BytesSize(float64(freed)))
	}
	if prog != nil {
		if err := o.finishProgress(prog, mode, res); err != nil {
			return err
		}
	}
	if probes := req.Plan.KubernetesProbes(); probes != nil {
		// Ready to paste into the container's spec.
		var y bytes.Buffer
		enc := yaml.NewEncoder(&y)
		enc.SetIndent(2)
		if err := enc.Encode(probes); err == nil {
			fmt.Fprintf(log, "packer: Kubernetes probes for the container spec:\n%s", indent(y.String(), "    "))
		}
	}
	for _, r := range results {
		fmt.Fprintln(c.OutOrStdout(), r)
	}
	return nil
}

// request maps the flags (and packer.toml, and the environment) to a
// pipeline request. Everything the user typed is checked here, before
// any work is done.
func (o *buildOptions) request(c *cobra.Command, dir string) (*pipeline.Request, error) {
	if err := checkResultFile("--metadata-file", o.metadataFile); err != nil {
		return nil, err
	}
	if err := checkResultFile("--iidfile", o.iidFile); err != nil {
		return nil, err
	}
	client, err := o.registry.client()
	if err != nil {
		return nil, err
	}
	client.Progress = o.onPush
	o.client = client
	p, merged, err := o.makePlan(c, dir)
	if err != nil {
		return nil, err
	}
	platforms, err := config.ParsePlatforms(strings.Join(p.Platforms, ","))
	if err != nil {
		return nil, err
	}
	formats, err := parseSBOMFormats(o.sboms)
	if err != nil {
		return nil, err
	}
	var tags []name.Tag
	for _, t := range o.tags {
		tag, err := client.ParseTag(t)
		if err != nil {
			return nil, err
		}
		tags = append(tags, tag)
	}
	outputs := o.outputs
	if o.load {
		outputs = append(outputs, "daemon")
	}
	pubs, err := publish.Parse(outputs, o.push, publish.Target{Client: client, Tags: tags, DefaultLayout: filepath.Join(dir, DefaultOutputDir)})
	if err != nil {
		return nil, err
	}
	signer, err := o.signer(publish.Pushes(pubs))
	if err != nil {
		return nil, err
	}
	var secrets buildargs.Secrets
	for _, s := range o.secrets {
		sec, err := buildargs.ParseSecret(s, os.LookupEnv)
		if err != nil {
			return nil, err
		}
		secrets = append(secrets, sec)
	}
	for _, pub := range pubs {
		if err := pub.Check(len(platforms)); err != nil {
			return nil, err
		}
		// Outputs inside the context must not feed the next build.
		if l, ok := pub.(publish.Local); ok {
			if rel, ok := inside(dir, l.Path()); ok {
				p.Exclude = append(p.Exclude, rel)
			}
		}
	}
	created, createdFrom, err := creationTime(dir)
	if err != nil {
		return nil, err
	}
	o.createdFrom = createdFrom
	cacheDir := o.cacheDir
	if cacheDir == "" {
		d, err := defaultCacheDir()
		if err != nil {
			return nil, err
		}
		cacheDir = d
	}
	o.cacheDirUsed = cacheDir
	if o.cacheMax == "" {
		o.cacheMax = os.Getenv("PACKER_CACHE_MAX")
	}
	o.cacheMaxSet = o.cacheMax != ""
	if o.cacheMax == "" {
		o.cacheMax = DefaultCacheMax
	}
	if n, err := units.RAMInBytes(o.cacheMax); err != nil || n < 0 {
		return nil, &UsageError{fmt.Errorf("--cache-max %q: give a size such as 10GiB, or 0 to keep everything", o.cacheMax)}
	}
	if rel, ok := inside(dir, cacheDir); ok {
		// A cache kept inside the project (GitLab CI caches only paths
		// there) is never part of the context.
		p.Exclude = append(p.Exclude, rel)
	}
	store, err := layers.NewStore(cacheDir)
	if err != nil {
		return nil, err
	}
	compression := o.compression
	if compression == "" {
		compression = os.Getenv("PACKER_COMPRESSION")
	}
	switch compression {
	case "", layers.Gzip:
	case layers.Zstd:
		store.Compression = layers.Zstd
	default:
		return nil, &UsageError{fmt.Errorf("--compression %q: use gzip or zstd", compression)}
	}
	labels := gitLabels(dir)
	image := builder.InImage{CacheDir: cacheDir, ToolCache: filepath.Join(cacheDir, "tool-cache")}
	var executor builder.Executor = builder.Auto{Image: image}
	switch merged.String("executor") {
	case builder.ModeHost:
		executor = builder.Host{}
	case builder.ModeImage:
		executor = image
	}
	var engine pipeline.Engine
	switch o.builderName {
	case "", "packer":
	case "buildkit":
		addr := o.buildkitAddr
		if addr == "" {
			addr = os.Getenv("BUILDKIT_HOST")
		}
		if addr == "" {
			return nil, &UsageError{fmt.Errorf("--builder buildkit needs a BuildKit daemon: pass --buildkit-addr tcp://HOST:PORT (or unix://, kube-pod://, docker-container://) or set BUILDKIT_HOST")}
		}
		bk := &scaleout.BuildKit{Addr: addr, Secrets: map[string][]byte{}, EnvIDs: map[string]bool{}, TmpDir: filepath.Join(cacheDir, "tmp")}
		if err := os.MkdirAll(bk.TmpDir, 0o755); err != nil {
			return nil, err
		}
		for _, sec := range secrets {
			bk.Secrets[sec.ID] = sec.Value()
			bk.EnvIDs[sec.ID] = sec.Env != ""
		}
		// The steps trust this machine's CAs too (a proxy that re-signs
		// TLS), as the in-image executor's do.
		for _, ca := range []string{os.Getenv("SSL_CERT_FILE"), "/etc/ssl/certs/ca-certificates.crt"} {
			if ca != "" {
				if _, err := os.Stat(ca); err == nil {
					bk.CA = ca
					break
				}
			}
		}
		o.buildkit = bk
		engine = bk.Build
	default:
		return nil, &UsageError{fmt.Errorf("--builder %q: use packer or buildkit", o.builderName)}
	}
	return &pipeline.Request{
		Engine:   engine,
		Executor: executor,
		Dir:      dir, Plan: p, Platforms: platforms, Secrets: secrets, Publishers: pubs,
		SBOM:   pipeline.SBOMOptions{Formats: formats, Dir: o.sbomDir, Single: !o.sbomSplit, Name: firstName(tags, dir)},
		Signer: signer, Source: labels["org.opencontainers.image.source"], Revision: labels["org.opencontainers.image.revision"],
		Created: created, Store: store, Resolve: client.Resolve, Labels: labels, Version: version(), NoCache: o.noCache,
	}, nil
}

// signer checks the signing flags and returns the pipeline's signer (nil
// when unsigned).
func (o *buildOptions) signer(pushes bool) (pipeline.Signer, error) {
	if o.signKey == "" && !o.keyless {
		return nil, nil
	}
	flag := "--sign-key"
	if o.keyless {
		flag = "--sign-keyless"
	}
	if o.signKey != "" && o.keyless {
		return nil, fmt.Errorf("--sign-key and --sign-keyless both given; sign with one of them")
	}
	if !pushes {
		return nil, fmt.Errorf("%s signs images pushed to a registry (cosign verifies them there); add --push", flag)
	}
	if o.keyless {
		// Where the token comes from is checked now, so a build that cannot
		// sign fails before it starts; the token (GitHub's lives minutes)
		// and the certificate (ten minutes) are fetched after the build.
		if _, err := sign.TokenSource(o.idToken, os.Getenv); err != nil {
			return nil, err
		}
		k := pipeline.Keyless{Token: o.idToken, Getenv: os.Getenv, FulcioURL: o.fulcioURL}
		if o.tlog {
			k.Tlog = &sign.Rekor{URL: o.rekorURL}
		}
		return k, nil
	}
	key, err := sign.LoadKey(o.signKey, []byte(os.Getenv("COSIGN_PASSWORD")))
	if err != nil {
		return nil, err
	}
	s := sign.KeySigner(key)
	if o.tlogSet && o.tlog {
		s.Tlog = &sign.Rekor{URL: o.rekorURL}
	}
	return pipeline.Key{Key: s}, nil
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

func parseSBOMFormats(s string) ([]string, error) {
	if s == "none" || s == "" {
		return nil, nil
	}
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if _, ok := pipeline.SBOMTypes[f]; !ok {
			return nil, fmt.Errorf("invalid --sbom %q: use spdx, cyclonedx, both comma separated, or none", f)
		}
		out = append(out, f)
	}
	return out, nil
}

func firstName(tags []name.Tag, dir string) string {
	if len(tags) > 0 {
		return strings.TrimSuffix(tags[0].String(), ":"+tags[0].TagStr())
	}
	abs, _ := filepath.Abs(dir)
	return filepath.Base(abs)
}

// indent prefixes each line of s.
func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}

// progressMode is --progress, resolved: -q is quiet, auto is tty on a
// terminal and plain elsewhere.
func (o *buildOptions) progressMode(c *cobra.Command, ro *rootOptions) (string, error) {
	if ro.quiet {
		return ProgressQuiet, nil
	}
	switch o.progress {
	case ProgressAuto, "":
		if f, ok := c.ErrOrStderr().(*os.File); ok && isTerminal(f) && os.Getenv("TERM") != "dumb" {
			return ProgressTTY, nil
		}
		return ProgressPlain, nil
	case ProgressTTY, ProgressPlain, ProgressJSON, ProgressQuiet:
		return o.progress, nil
	}
	return "", &UsageError{fmt.Errorf("--progress %q: use auto, tty, plain, json or quiet", o.progress)}
}

// finishProgress ends the display: the summary (plain, tty), or the result
// as the last JSON event (the --metadata-file content).
func (o *buildOptions) finishProgress(prog *progress, mode string, res *pipeline.Result) error {
	prog.finish()
	if mode == ProgressJSON {
		m, err := metadata(res, o.tags)
		if err != nil {
			return err
		}
		prog.emitJSON(map[string]any{"time": time.Now().UTC(), "type": "result", "result": m})
		return nil
	}
	var refs []string
	for _, p := range res.Published {
		for _, r := range p.Refs {
			refs = append(refs, r.String())
		}
		if p.Path != "" {
			refs = append(refs, p.Path)
		}
	}
	var size int64
	for _, im := range res.Built.Images {
		if ls, err := im.Image.Layers(); err == nil {
			for _, l := range ls {
				if n, err := l.Size(); err == nil {
					size += n
				}
			}
		}
	}
	_, err := io.WriteString(prog.out, prog.summary(refs, res.Digest.String(), size))
	return err
}
