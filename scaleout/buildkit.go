package scaleout

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	dockerconfig "github.com/docker/cli/cli/config"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	bkclient "github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/client/llb/sourceresolver"
	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	"github.com/moby/buildkit/session"
	"github.com/moby/buildkit/session/auth/authprovider"
	"github.com/moby/buildkit/session/secrets/secretsprovider"
	"github.com/moby/buildkit/util/progress/progressui"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"

	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/internal/tmpdir"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/oci"
	"github.com/packer-build/packer/plan"
)

// BuildKit runs plans on a BuildKit daemon (buildkitd): the same steps,
// in the same images, solved remotely; packer receives the result as an
// OCI layout and makes SBOMs, signs and publishes it as for its own
// builds. It is a pipeline Engine.
type BuildKit struct {
	// Addr is buildkitd's address: tcp://, unix://, and the client's
	// kube-pod:// and docker-container:// forms.
	Addr string
	// Secrets are the --secret values, by id (env marks an env secret).
	Secrets map[string][]byte
	EnvIDs  map[string]bool
	// CA is a CA bundle the steps trust ("" for none).
	CA string
	// CacheFrom and CacheTo are BuildKit cache entries ("registry" with a
	// ref), imported and exported with the build.
	CacheFrom, CacheTo []map[string]string
	// TmpDir holds the received layout until Close.
	TmpDir string

	mu   sync.Mutex
	dirs []string
}

// Close removes the layouts received.
func (e *BuildKit) Close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, d := range e.dirs {
		_ = os.RemoveAll(d)
	}
	e.dirs = nil
}

func ociPlatform(p v1.Platform) ocispecs.Platform {
	return ocispecs.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
}

// baseRef is the plan's base as BuildKit pulls it, or "" for packer's
// own bases.
func baseRef(p *plan.Plan) (string, error) {
	switch {
	case p.Base == plan.BaseStatic, p.Base == plan.BaseScratch:
		return "", nil
	case strings.HasPrefix(p.Base, "oci:"), strings.HasPrefix(p.Base, "builtin:"):
		return "", fmt.Errorf("base %s is on this machine, which a BuildKit daemon cannot read: push it to a registry the daemon reaches and pass --base REGISTRY/NAME:TAG", p.Base)
	}
	return p.Base, nil
}

// Build solves p for opts.Platforms in one request (the platforms in
// parallel) and returns the result as packer's own builder would.
func (e *BuildKit) Build(ctx context.Context, dir string, p *plan.Plan, opts builder.Options) (*oci.Built, *builder.Report, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(logw, format+"\n", args...) }
	base, err := baseRef(p)
	if err != nil {
		return nil, nil, err
	}
	ig, err := layers.LoadIgnore(dir, p.Exclude, p.Context)
	if err != nil {
		return nil, nil, err
	}
	files, err := layers.Collect(dir, ig, nil)
	if err != nil {
		return nil, nil, err
	}
	var ctxFiles []string
	for _, f := range files {
		ctxFiles = append(ctxFiles, f.Rel)
	}
	var secretIDs []Secret
	for _, id := range sortedKeys(e.Secrets) {
		secretIDs = append(secretIDs, Secret{ID: id, Env: e.EnvIDs[id]})
	}
	secretValues := map[string][]byte{}
	for k, v := range e.Secrets {
		secretValues[k] = v
	}
	if e.CA != "" {
		b, err := os.ReadFile(e.CA)
		if err != nil {
			return nil, nil, fmt.Errorf("reading the CA bundle for the steps: %w", err)
		}
		secretValues[CASecret] = b
	}

	c, err := bkclient.New(ctx, e.Addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to BuildKit at %s: %w; start buildkitd there, or set --buildkit-addr / BUILDKIT_HOST", e.Addr, err)
	}
	defer func() { _ = c.Close() }()
	// The client dials lazily: reach the daemon now, so an address with
	// nothing behind it fails at once and says so.
	pingCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	workers, err := c.ListWorkers(pingCtx)
	cancel()
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach a BuildKit daemon at %s: start buildkitd there, or point --buildkit-addr (or BUILDKIT_HOST) at one\ncause: %s", e.Addr, lastCause(err))
	}
	if len(workers) == 0 {
		return nil, nil, fmt.Errorf("the BuildKit daemon at %s has no workers: check its configuration (the runc or containerd worker)", e.Addr)
	}

	out, err := tmpdir.Mkdir(e.TmpDir, "packer-buildkit-")
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	e.dirs = append(e.dirs, out)
	e.mu.Unlock()
	tarPath := filepath.Join(out, "result.tar")

	fsCtx, err := fsutil.NewFS(dir)
	if err != nil {
		return nil, nil, err
	}
	epoch := strconv.FormatInt(opts.Created.Unix(), 10)
	solveOpt := bkclient.SolveOpt{
		// Not nil: the client copies the cache options' attributes into
		// it (and panics on a nil map).
		FrontendAttrs: map[string]string{},
		LocalMounts:   map[string]fsutil.FS{ContextName: fsCtx},
		Exports: []bkclient.ExportEntry{{
			Type: bkclient.ExporterOCI,
			// The image's time; not rewrite-timestamp, which rewrites
			// every layer's files (the base's too, so its layers would no
			// longer be the registry's).
			Attrs: map[string]string{"source-date-epoch": epoch},
			Output: func(map[string]string) (io.WriteCloser, error) {
				return os.Create(tarPath)
			},
		}},
		Session: []session.Attachable{
			authprovider.NewDockerAuthProvider(authprovider.DockerAuthProviderConfig{
				AuthConfigProvider: authprovider.LoadAuthConfig(dockerconfig.LoadDefaultConfigFile(io.Discard)),
			}),
			secretsprovider.FromMap(secretValues),
		},
	}
	for _, ce := range e.CacheFrom {
		solveOpt.CacheImports = append(solveOpt.CacheImports, bkclient.CacheOptionsEntry{Type: "registry", Attrs: ce})
	}
	for _, ce := range e.CacheTo {
		solveOpt.CacheExports = append(solveOpt.CacheExports, bkclient.CacheOptionsEntry{Type: "registry", Attrs: ce})
	}

	buildPl := ocispecs.Platform{OS: "linux", Architecture: opts.Platforms[0].Architecture, Variant: opts.Platforms[0].Variant}
	if bp := os.Getenv("PACKER_BUILDKIT_BUILD_PLATFORM"); bp != "" {
		parts := strings.SplitN(bp, "/", 3)
		if len(parts) >= 2 {
			buildPl = ocispecs.Platform{OS: parts[0], Architecture: parts[1]}
			if len(parts) == 3 {
				buildPl.Variant = parts[2]
			}
		}
	}

	type platformResult struct {
		baseDigest string
		baseLayers int
	}
	results := make([]platformResult, len(opts.Platforms))
	build := func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		// The daemon's own platform runs the steps (cross builds as the
		// host executor makes them): its first worker's.
		if os.Getenv("PACKER_BUILDKIT_BUILD_PLATFORM") == "" && len(workers[0].Platforms) > 0 {
			buildPl = workers[0].Platforms[0]
		}
		res := gateway.NewResult()
		var mu sync.Mutex
		exp := exptypes.Platforms{}
		g, gctx := errgroup.WithContext(ctx)
		for i, pl := range opts.Platforms {
			g.Go(func() error {
				target := ociPlatform(pl)
				o := LLBOptions{Platform: target, BuildPlatform: buildPl, Ignore: ig.Patterns(), Context: ctxFiles, Secrets: secretIDs, CA: e.CA != "", ContextID: contextID(dir)}
				var cfg v1.ConfigFile
				if base != "" {
					ref, dgst, raw, err := gc.ResolveImageConfig(gctx, base, sourceresolver.Opt{ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &target}})
					if err != nil {
						return fmt.Errorf("resolving the base %s for %s: %w", base, pl, err)
					}
					if err := json.Unmarshal(raw, &cfg); err != nil {
						return fmt.Errorf("reading the base %s's config: %w", base, err)
					}
					// The base's runtime against the plan's, as packer's
					// own engine checks it (from its config: the daemon
					// holds its files).
					_, notes, err := builder.CheckBaseRuntimes(p, cfg.Config.Env, nil)
					if err != nil {
						return err
					}
					for _, n := range notes {
						mu.Lock()
						logf("%s (%s)", n.Message, pl)
						mu.Unlock()
					}
					pinned, err := pin(ref, dgst.String())
					if err != nil {
						return err
					}
					o.Base, o.BaseEnv = pinned, cfg.Config.Env
					results[i] = platformResult{baseDigest: dgst.String(), baseLayers: len(cfg.RootFS.DiffIDs)}
				}
				if p.BuildImage != "" {
					ref, dgst, raw, err := gc.ResolveImageConfig(gctx, p.BuildImage, sourceresolver.Opt{ImageOpt: &sourceresolver.ResolveImageOpt{Platform: &buildPl}})
					if err != nil {
						return fmt.Errorf("resolving the build image %s: %w", p.BuildImage, err)
					}
					var bcfg v1.ConfigFile
					if err := json.Unmarshal(raw, &bcfg); err != nil {
						return err
					}
					if o.BuildImage, err = pin(ref, dgst.String()); err != nil {
						return err
					}
					o.BuildEnv = bcfg.Config.Env
				}
				st, err := LLB(p, o)
				if err != nil {
					return err
				}
				def, err := st.Marshal(gctx, llb.Platform(target))
				if err != nil {
					return err
				}
				req := gateway.SolveRequest{Definition: def.ToPB(), Evaluate: true}
				for _, ce := range e.CacheFrom {
					req.CacheImports = append(req.CacheImports, gateway.CacheOptionsEntry{Type: "registry", Attrs: ce})
				}
				r, err := gc.Solve(gctx, req)
				if err != nil {
					return err
				}
				ref, err := r.SingleRef()
				if err != nil {
					return err
				}
				cfgJSON, err := ImageConfig(&cfg, p, pl, opts.Created, opts.Labels)
				if err != nil {
					return err
				}
				id := pl.String()
				mu.Lock()
				defer mu.Unlock()
				if len(opts.Platforms) == 1 {
					res.SetRef(ref)
					res.AddMeta(exptypes.ExporterImageConfigKey, cfgJSON)
				} else {
					res.AddRef(id, ref)
					res.AddMeta(exptypes.ExporterImageConfigKey+"/"+id, cfgJSON)
					exp.Platforms = append(exp.Platforms, exptypes.Platform{ID: id, Platform: target})
				}
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		if len(opts.Platforms) > 1 {
			// In the order asked, whatever order the solves finished in.
			var ordered []exptypes.Platform
			for _, pl := range opts.Platforms {
				for _, x := range exp.Platforms {
					if x.ID == pl.String() {
						ordered = append(ordered, x)
					}
				}
			}
			b, err := json.Marshal(exptypes.Platforms{Platforms: ordered})
			if err != nil {
				return nil, err
			}
			res.AddMeta(exptypes.ExporterPlatformsKey, b)
		}
		return res, nil
	}

	logf("building on BuildKit at %s (%s)", e.Addr, platformList(opts.Platforms))
	start := time.Now()
	ch := make(chan *bkclient.SolveStatus)
	display, err := progressui.NewDisplay(logw, progressui.PlainMode)
	if err != nil {
		return nil, nil, err
	}
	// The display reads a copy; the steps' runs (vertices named "step
	// NAME: …" by LLB) are counted, run or cached, for the report.
	shown := make(chan *bkclient.SolveStatus)
	steps := map[string]bool{} // vertex digest → cached
	var g errgroup.Group
	g.Go(func() error {
		_, err := c.Build(ctx, solveOpt, "packer", build, ch)
		return err
	})
	g.Go(func() error {
		defer close(shown)
		for st := range ch {
			for _, v := range st.Vertexes {
				if strings.HasPrefix(v.Name, "step ") && strings.Contains(v.Name, ": ") && !strings.Contains(v.Name, ": its inputs") &&
					!strings.Contains(v.Name, ": the context") && !strings.Contains(v.Name, ": the output of ") && (v.Completed != nil || v.Cached) {
					steps[v.Digest.String()] = v.Cached
				}
			}
			shown <- st
		}
		return nil
	})
	g.Go(func() error {
		_, err := display.UpdateFrom(context.WithoutCancel(ctx), shown)
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, nil, fmt.Errorf("BuildKit build failed: %w", err)
	}
	logf("BuildKit built %s in %s", platformList(opts.Platforms), time.Since(start).Round(time.Millisecond))

	built, rep, err := e.receive(out, tarPath, p, opts, func(i int) (string, int) { return results[i].baseDigest, results[i].baseLayers })
	if err != nil {
		return nil, nil, err
	}
	for _, cached := range steps {
		if cached {
			rep.StepsCached++
		} else {
			rep.StepsRun++
		}
	}
	return built, rep, nil
}

// contextID is a stable name for dir on this machine (see
// LLBOptions.ContextID).
func contextID(dir string) string {
	abs, _ := filepath.Abs(dir)
	host, _ := os.Hostname()
	sum := sha256.Sum256([]byte("packer-context\x00" + host + "\x00" + abs))
	return hex.EncodeToString(sum[:])[:25]
}

// lastCause is the innermost message of a gRPC error chain.
func lastCause(err error) string {
	msg := err.Error()
	if i := strings.LastIndex(msg, "desc = "); i >= 0 {
		msg = strings.Trim(msg[i+len("desc = "):], `"`)
	}
	if i := strings.LastIndex(msg, "Error while dialing: "); i >= 0 {
		msg = msg[i+len("Error while dialing: "):]
	}
	return msg
}

// pin names ref by digest.
func pin(ref, dgst string) (string, error) {
	r, err := name.ParseReference(ref)
	if err != nil {
		return "", fmt.Errorf("base reference %q: %w", ref, err)
	}
	return r.Context().Name() + "@" + dgst, nil
}

func platformList(pls []v1.Platform) string {
	var s []string
	for _, p := range pls {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// ImageConfig is the image config BuildKit exports for one platform: the
// base's, with the plan applied as the daemonless path applies it, and
// the entrypoint under packer's init when the plan asks for one.
func ImageConfig(base *v1.ConfigFile, p *plan.Plan, pl v1.Platform, created time.Time, labels map[string]string) ([]byte, error) {
	cfg := base.DeepCopy()
	cfg.RootFS = v1.RootFS{}
	cfg.History = nil
	builder.ImageConfig(cfg, p, pl, created, labels)
	if p.Init && p.Base != plan.BaseStatic && p.Base != plan.BaseScratch && len(cfg.Config.Entrypoint) > 0 {
		cfg.Config.Entrypoint = append([]string{plan.InitPath}, cfg.Config.Entrypoint...)
	}
	return json.Marshal(cfg)
}

// receive reads the OCI tarball BuildKit exported into a layout and
// returns it as a build result.
func (e *BuildKit) receive(out, tarPath string, p *plan.Plan, opts builder.Options, baseOf func(int) (string, int)) (*oci.Built, *builder.Report, error) {
	dir := filepath.Join(out, "layout")
	f, err := os.Open(tarPath)
	if err != nil {
		return nil, nil, fmt.Errorf("BuildKit exported nothing: %w", err)
	}
	defer f.Close()
	if err := layers.Extract(context.Background(), f, "", dir); err != nil {
		return nil, nil, fmt.Errorf("reading BuildKit's OCI export: %w", err)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("reading BuildKit's OCI export: %w", err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		return nil, nil, fmt.Errorf("BuildKit's OCI export holds %d results, want 1 (%v)", len(im.Manifests), err)
	}
	top := im.Manifests[0]
	rep := &builder.Report{Layers: map[string][]builder.LayerReport{}}
	built := &oci.Built{}
	addImage := func(i int, img v1.Image, pl v1.Platform) error {
		d, n := baseOf(i)
		var info *oci.BaseInfo
		if d != "" {
			h, err := v1.NewHash(d)
			if err != nil {
				return err
			}
			info = &oci.BaseInfo{Name: p.Base, Digest: h}
		}
		ls, err := img.Layers()
		if err != nil {
			return err
		}
		for j, l := range ls {
			if j < n {
				continue
			}
			ld, _ := l.Digest()
			size, _ := l.Size()
			rep.Layers[pl.String()] = append(rep.Layers[pl.String()], builder.LayerReport{Name: fmt.Sprintf("buildkit-%d", j-n), Digest: ld, Size: size})
		}
		built.Images = append(built.Images, oci.Image{Image: img, Platform: pl, Base: info})
		return nil
	}
	if top.MediaType.IsIndex() {
		sub, err := idx.ImageIndex(top.Digest)
		if err != nil {
			return nil, nil, err
		}
		sm, err := sub.IndexManifest()
		if err != nil {
			return nil, nil, err
		}
		for i, pl := range opts.Platforms {
			found := false
			for _, m := range sm.Manifests {
				if m.Platform != nil && m.Platform.OS == pl.OS && m.Platform.Architecture == pl.Architecture && m.Platform.Variant == pl.Variant {
					img, err := sub.Image(m.Digest)
					if err != nil {
						return nil, nil, err
					}
					if err := addImage(i, img, pl); err != nil {
						return nil, nil, err
					}
					found = true
					break
				}
			}
			if !found {
				return nil, nil, fmt.Errorf("BuildKit's result has no %s image", pl)
			}
		}
		built.Result = sub
	} else {
		img, err := idx.Image(top.Digest)
		if err != nil {
			return nil, nil, err
		}
		if err := addImage(0, img, opts.Platforms[0]); err != nil {
			return nil, nil, err
		}
		built.Result = img
	}
	return built, rep, nil
}
