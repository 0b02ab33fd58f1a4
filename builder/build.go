// Package builder executes a plan: it runs the plan's steps with the host
// toolchain in a staging copy of the context, writes each layer through the
// layer store (skipping steps whose inputs are unchanged), and appends the
// layers on the resolved base, one image per platform.
package builder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/packer-build/packer/internal/tmpdir"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/oci"
	"github.com/packer-build/packer/plan"
)

// Result is an image or an index (oci.Result).
type Result = oci.Result

// BaseInfo records which base an image was built on (oci.BaseInfo).
type BaseInfo = oci.BaseInfo

// BaseResolver resolves a base reference to an image for one platform.
// Implemented by the registry package for registry references and oci:
// layouts; build handles plan.BaseStatic and plan.BaseScratch itself.
type BaseResolver func(ctx context.Context, ref string, p v1.Platform) (v1.Image, *BaseInfo, error)

// Options configure a build.
type Options struct {
	// Platforms to build; one gives an image, several an index.
	Platforms []v1.Platform
	// Store holds layers and the step cache.
	Store *layers.Store
	// NoCache runs every step even when its inputs are unchanged.
	NoCache bool
	// Created is the image's creation time.
	Created time.Time
	// Resolve resolves registry and layout bases.
	Resolve BaseResolver
	// Labels are added to the image config (after the plan's).
	Labels map[string]string
	// SecretEnv is added to every step's environment at run time only: it
	// is not part of any cache key and never written anywhere (secrets).
	SecretEnv map[string]string
	// Version of packer, part of every step cache key.
	Version string
	// Log receives progress lines and step output; nil discards them.
	Log io.Writer
	// Executor runs the steps' commands; nil means Host.
	Executor Executor
	// Heartbeat is how long a step may print nothing before the log says
	// it is still running; 0 means DefaultHeartbeat.
	Heartbeat time.Duration
	// Events receives step events (start, done, cached); nil discards them.
	Events oci.Events
}

// Executors, by the name a Report gives them.
func executorName(e Executor) string {
	if _, ok := e.(InImage); ok {
		return ModeImage
	}
	return ModeHost
}

// Report says what a build did, for logs and tests.
type Report struct {
	// StepsRun and StepsCached count step executions per platform.
	StepsRun, StepsCached int
	// Layers lists each platform's layers added on the base.
	Layers map[string][]LayerReport
	// Secrets lists the context's secret-looking files: left out, or
	// shipped because a `!` pattern brought them back.
	Secrets []layers.SecretFile
	// Executors says where each platform's steps ran, and why.
	Executors map[string]Choice
}

// LayerReport describes one layer packer added.
type LayerReport struct {
	Name   string
	Digest v1.Hash
	Size   int64
	Cached bool
}

type builder struct {
	dir      string
	plan     *plan.Plan
	opts     Options
	ignore   *layers.Ignore
	log      io.Writer
	report   *Report
	mu       sync.Mutex
	tcCache  map[string]string
	staging  []string
	restored map[string]bool
	// linked are the cached trees hard-linked into each staging copy
	// (tree.go), checked after every step.
	linked map[string][]*linkedTree
	logged map[string]bool // secret files already named in the log
	// checks are the plan's toolchain checks, aimed at the base's own
	// runtime once it is known (checkRuntimes).
	checks []plan.ToolchainCheck
	// baseHave holds the current platform's base runtime versions, by
	// name ("" when the base does not tell); hostHave this machine's.
	baseHave, hostHave map[string]string
	// exec runs the current platform's steps (Options.Executor, or the
	// choice Auto made).
	exec Executor
	// systemDirs are the current platform's installed system packages
	// (top first), systemKey their cache key, part of every step's.
	systemDirs []string
	systemKey  string
}

// Build executes p for the context in dir.
func Build(ctx context.Context, dir string, p *plan.Plan, opts Options) (*oci.Built, *Report, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	if len(opts.Platforms) == 0 {
		return nil, nil, fmt.Errorf("no platform to build for")
	}
	if opts.Store == nil {
		return nil, nil, fmt.Errorf("no layer store")
	}
	ig, err := layers.LoadIgnore(dir, p.Exclude, p.Context)
	if err != nil {
		return nil, nil, err
	}
	if err := checkManifestsKept(dir, p, ig); err != nil {
		return nil, nil, err
	}
	b := &builder{
		dir: dir, plan: p, opts: opts, ignore: ig, log: opts.Log,
		report:   &Report{Layers: map[string][]LayerReport{}, Executors: map[string]Choice{}},
		tcCache:  map[string]string{},
		restored: map[string]bool{},
		linked:   map[string][]*linkedTree{},
		logged:   map[string]bool{},
		checks:   slices.Clone(p.ToolchainChecks),
	}
	if b.log == nil {
		b.log = io.Discard
	}
	if b.opts.Executor == nil {
		b.opts.Executor = Host{}
	}
	b.exec = b.opts.Executor
	// What killed builds left in the temporary directory goes first.
	tmpdir.Reclaim(os.TempDir(), "packer-stage-")
	tmpdir.Reclaim(os.TempDir(), "packer-sandbox-")
	defer func() {
		for _, s := range b.staging {
			os.RemoveAll(s)
		}
	}()

	var imgs []oci.Image
	for _, pl := range opts.Platforms {
		img, info, err := b.buildPlatform(ctx, pl)
		if err != nil {
			if len(opts.Platforms) > 1 {
				return nil, nil, fmt.Errorf("building for %s: %w", pl.String(), err)
			}
			return nil, nil, err
		}
		imgs = append(imgs, oci.Image{Platform: pl, Image: img, Base: info})
	}
	res, err := assemble(imgs)
	if err != nil {
		return nil, nil, err
	}
	return &oci.Built{Result: res, Images: imgs}, b.report, nil
}

// manifests are the files detection reads an app by; the build needs them
// in the context as well.
var manifests = []string{"go.mod", "go.sum", "go.work", "package.json", "pyproject.toml", "requirements.txt", "Pipfile"}

// checkManifestsKept fails when the context's patterns (.dockerignore,
// packer.toml exclude) leave out a file the plan was made from or its
// steps read: detection reads the directory itself, the build only what
// the context keeps, and the toolchain's error would not say why.
func checkManifestsKept(dir string, p *plan.Plan, ig *layers.Ignore) error {
	names := slices.Clone(manifests)
	for _, s := range p.Steps {
		for _, in := range s.Inputs {
			// Lockfiles only: a step's other inputs (.npmrc, pip.conf)
			// may be left out on purpose, and the secret rules do so.
			if !strings.ContainsAny(in, "*?[!") && strings.Contains(path.Base(in), "lock") {
				names = append(names, in)
			}
		}
	}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(n))); err != nil {
			continue
		}
		if excluded, _, err := ig.Excluded(n, false); err == nil && excluded {
			return fmt.Errorf("%s is left out of the build context (by .dockerignore or packer.toml's exclude), but the %s build needs it: remove the pattern that matches it, or add a !%s line to .dockerignore", n, p.Provider, n)
		}
	}
	return nil
}

// assemble is the one image, or an index of several (a Docker manifest
// list when the images are Docker-typed, as their base was).
func assemble(imgs []oci.Image) (Result, error) {
	if len(imgs) == 1 {
		return imgs[0].Image, nil
	}
	var adds []mutate.IndexAddendum
	for _, img := range imgs {
		mt, err := img.Image.MediaType()
		if err != nil {
			return nil, err
		}
		pl := img.Platform
		adds = append(adds, mutate.IndexAddendum{Add: img.Image, Descriptor: v1.Descriptor{MediaType: mt, Platform: &pl}})
	}
	idxType := types.OCIImageIndex
	if mt, _ := imgs[0].Image.MediaType(); mt == types.DockerManifestSchema2 {
		idxType = types.DockerManifestList
	}
	return mutate.AppendManifests(mutate.IndexMediaType(empty.Index, idxType), adds...), nil
}

func (b *builder) logf(format string, args ...any) {
	fmt.Fprintf(b.log, format+"\n", args...)
}

// noteSecrets names in the log each secret-looking context file met since
// the last call, and keeps the list in the report.
func (b *builder) noteSecrets() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, n := range b.ignore.Notes() {
		if !b.logged["note\x00"+n] {
			b.logged["note\x00"+n] = true
			b.logf("warning: %s", n)
		}
	}
	all := b.ignore.Secrets()
	b.report.Secrets = all
	for _, s := range all {
		if b.logged[s.Rel] {
			continue
		}
		b.logged[s.Rel] = true
		if s.Shipped {
			b.logf("warning: shipping %s although it looks like %s: a ! pattern in .dockerignore brings it back", s.Rel, s.Reason)
		} else {
			b.logf("left out %s: %s (a !%s line in .dockerignore ships it)", s.Rel, s.Reason, s.Rel)
		}
	}
}

func (b *builder) buildPlatform(ctx context.Context, pl v1.Platform) (v1.Image, *BaseInfo, error) {
	baseStart := time.Now()
	phase := func(name string, since time.Time) {
		if len(b.opts.Platforms) > 1 {
			name += " " + pl.String()
		}
		b.opts.Events.Emit(oci.Event{Type: "phase", Phase: name, Duration: time.Since(since)})
	}
	base, info, err := b.base(ctx, pl)
	if err != nil {
		return nil, nil, err
	}
	baseType, err := base.MediaType()
	if err != nil {
		return nil, nil, fmt.Errorf("reading base image: %w", err)
	}
	layerType := types.OCILayer
	if baseType == types.DockerManifestSchema2 {
		layerType = types.DockerLayer
		if b.opts.Store.Compression == layers.Zstd {
			return nil, nil, fmt.Errorf("zstd layers go in OCI images, and the base %s is a Docker schema 2 image: build with --compression gzip, or choose an OCI base", b.plan.Base)
		}
	}
	if b.opts.Store.Compression == layers.Zstd {
		layerType = types.OCILayerZStd
	}
	var adds []mutate.Addendum
	var reports []LayerReport
	add := func(name, createdBy string, l *layers.Layer, cached bool) {
		adds = append(adds, mutate.Addendum{
			Layer:     l,
			MediaType: layerType,
			History: v1.History{
				Created:   v1.Time{Time: b.opts.Created},
				CreatedBy: createdBy,
				Comment:   "packer layer " + name,
			},
		})
		reports = append(reports, LayerReport{Name: name, Digest: l.Desc.Digest, Size: l.Desc.Size, Cached: cached})
	}

	// System layer: the non-root user, when the base lacks it.
	b.systemDirs, b.systemKey = nil, ""
	var facts *baseFacts
	var early *earlySteps
	if b.plan.Base != plan.BaseScratch && b.plan.Base != plan.BaseStatic && (b.plan.User != "" || b.plan.Init || len(b.plan.BaseRuntimes) > 0) {
		if facts = cachedFacts(b.opts.Store, base); facts == nil {
			if b.hostWithoutFacts(ctx, base) {
				// A base not read before: its files (users, init,
				// Debian packages, C library) are read while the steps
				// run on this machine, as the base's config says they
				// will; the choice is made again once they are read.
				if facts, early, err = b.stepsWhileReading(ctx, pl, base); err != nil {
					return nil, nil, err
				}
			} else if facts, err = inspectBase(ctx, b.opts.Store, base); err != nil {
				return nil, nil, err
			}
		}
		if err := b.checkRuntimes(base, facts); err != nil {
			return nil, nil, err
		}
	}
	if b.plan.User != "" {
		warn, err := checkUser(b.plan.User, b.plan.Base, facts)
		if err != nil {
			return nil, nil, err
		}
		if warn != "" && pl.String() == b.opts.Platforms[0].String() {
			b.logf("warning: %s", warn)
		}
	}
	if facts != nil && b.plan.User != "" {
		if ents := userEntries(facts); ents != nil {
			l, hit, err := b.opts.Store.FromEntries(ctx, ents)
			if err != nil {
				return nil, nil, err
			}
			b.logf("adding user %s (%d) to the base image", NonRootName, NonRootUID)
			add("system", "packer: add user nonroot", l, hit)
		}
	}

	// packer's init, when the plan wants one and the base has no tini.
	useInit := ""
	if facts != nil && b.plan.Init {
		switch {
		case facts.Init != "":
			useInit = facts.Init
		case facts.Bash != "":
			l, hit, err := b.opts.Store.FromEntries(ctx, initEntries(facts.Bash))
			if err != nil {
				return nil, nil, err
			}
			b.logf("the base has no tini: %s (a bash script) runs as PID 1, passes signals on and reaps orphaned processes", InitPath)
			add("init", "packer: add "+InitPath, l, hit)
			useInit = InitPath
		}
	}

	if err := b.chooseExecutor(ctx, pl, base, facts); err != nil {
		return nil, nil, err
	}
	if !b.plan.System.Empty() {
		img, inImage := b.exec.(InImage)
		if !inImage || runBase(base, b.plan.Base) == nil {
			b.logf("warning: system packages %s are not installed: the steps run on this machine (%s), which must provide them, and the image gets none of them", strings.Join(append(slices.Clone(b.plan.System.Build), b.plan.System.Run...), " "), b.report.Executors[pl.String()].Why)
		} else {
			l, cached, dirs, err := b.systemPackages(ctx, img, pl, base)
			if err != nil {
				return nil, nil, err
			}
			b.systemDirs = dirs
			if l != nil {
				add("packages", "packer: install "+strings.Join(b.plan.System.Run, " "), l, cached)
			}
		}
	}

	// The base resolved, fetched and read (its users, init, runtime
	// versions: cached per digest, so only a new base costs here).
	if d := time.Since(baseStart); d > 500*time.Millisecond && early == nil {
		b.logf("base %s (%s): resolved and read in %s", b.plan.Base, pl.String(), d.Round(time.Millisecond))
	}
	phase("base", baseStart)
	stepsStart := time.Now()
	defer func() { phase("steps and layers", stepsStart) }()

	// Step outputs, cached by each step's inputs.
	var stepLayers map[string][]*layers.Layer
	var stepCached map[string]bool
	switch {
	case early != nil && executorName(b.exec) == ModeHost:
		stepLayers, stepCached = early.layers, early.cached
		stepsStart = early.start
	default:
		if early != nil {
			b.logf("the base's files changed where the steps run (%s): they run again", b.report.Executors[pl.String()].Why)
			b.report.StepsRun, b.report.StepsCached = early.run, early.skipped
		}
		if stepLayers, stepCached, err = b.runSteps(ctx, pl, base); err != nil {
			return nil, nil, err
		}
	}
	for _, l := range b.plan.Layers {
		if l.From == plan.FromInline {
			uid, gid, err := layers.ParseOwner(l.Owner)
			if err != nil {
				return nil, nil, err
			}
			ly, hit, err := b.opts.Store.FromEntries(ctx, inlineEntries(l, uid, gid))
			if err != nil {
				return nil, nil, fmt.Errorf("writing layer %s: %w", l.Name, err)
			}
			add(l.Name, "packer: add "+strings.Join(slices.Sorted(maps.Keys(l.Files)), " ")+" → "+l.Dest, ly, hit)
			continue
		}
		if l.From == plan.FromSource {
			ig := b.ignore
			if l.Root != "" {
				// The context's patterns are relative to its root; the
				// secret rules hold everywhere.
				if ig, err = layers.ContextIgnore(nil); err != nil {
					return nil, nil, err
				}
			}
			files, spec, err := layerFiles(b.dir, ig, l)
			if err != nil {
				return nil, nil, err
			}
			ly, hit, err := b.opts.Store.FromFiles(ctx, files, spec)
			if err != nil {
				return nil, nil, fmt.Errorf("writing layer %s: %w", l.Name, err)
			}
			add(l.Name, fmt.Sprintf("packer: COPY %s %s", strings.Join(l.Include, " "), l.Dest), ly, hit)
			continue
		}
		ly := stepLayers[l.From][0]
		stepLayers[l.From] = stepLayers[l.From][1:]
		if l.CacheOnly {
			continue
		}
		add(l.Name, fmt.Sprintf("packer: %s → %s", shortCommand(stepByName(b.plan, l.From).Run), l.Dest), ly, stepCached[l.From])
	}

	b.noteSecrets()
	img, err := mutate.Append(base, adds...)
	if err != nil {
		return nil, nil, fmt.Errorf("appending layers: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, nil, fmt.Errorf("reading base image config: %w", err)
	}
	cfg = cfg.DeepCopy()
	ImageConfig(cfg, b.plan, pl, b.opts.Created, b.opts.Labels)
	if b.plan.Init && len(cfg.Config.Entrypoint) > 0 {
		switch {
		case useInit == InitPath:
			cfg.Config.Entrypoint = append([]string{InitPath}, cfg.Config.Entrypoint...)
		case useInit != "":
			cfg.Config.Entrypoint = append([]string{useInit, "--"}, cfg.Config.Entrypoint...)
		default:
			b.logf("note: the base has neither tini nor bash, so the app runs as PID 1 and orphaned child processes are not reaped; use a base with tini or run the container with --init")
		}
	}
	img, err = mutate.ConfigFile(img, cfg)
	if err != nil {
		return nil, nil, err
	}
	if ann := b.annotations(info); len(ann) > 0 {
		img = mutate.Annotations(img, ann).(v1.Image)
	}
	b.report.Layers[pl.String()] = reports
	return img, info, nil
}

// annotations are the manifest annotations: the base, the user's, and the
// Kubernetes probes the plan asks for.
func (b *builder) annotations(info *BaseInfo) map[string]string {
	ann := map[string]string{}
	if info != nil {
		if info.Name != "" {
			ann["org.opencontainers.image.base.name"] = info.Name
		}
		ann["org.opencontainers.image.base.digest"] = info.Digest.String()
	}
	if probes := b.plan.KubernetesProbes(); probes != nil {
		raw, _ := json.Marshal(probes)
		ann[ProbesAnnotation] = string(raw)
	}
	for k, v := range b.plan.Annotations {
		ann[k] = v
	}
	return ann
}

// ProbesAnnotation holds the Kubernetes probes the plan asks for
// (--health-path, --liveness-path) as a JSON object of
// readinessProbe / livenessProbe, each an httpGet probe on the app's port,
// for deploy tooling that writes manifests.
const ProbesAnnotation = "dev.packer.probes"

// layerFiles is what layer l ships from dir (joined with l.Root): the
// files its Include names (all when it names none; those that do not
// exist are skipped) that ig, plus the layer's own Exclude, keeps; and how
// they are placed (Dest, owner).
func layerFiles(dir string, ig *layers.Ignore, l plan.Layer) ([]layers.File, layers.Spec, error) {
	uid, gid, err := layers.ParseOwner(l.Owner)
	if err != nil {
		return nil, layers.Spec{}, err
	}
	if ig, err = ig.With(l.Exclude); err != nil {
		return nil, layers.Spec{}, err
	}
	root := filepath.Join(dir, filepath.FromSlash(l.Root))
	files, err := layers.Collect(root, ig, existing(root, l.Include))
	if err != nil {
		return nil, layers.Spec{}, err
	}
	return files, layers.Spec{Dest: l.Dest, UID: uid, GID: gid}, nil
}

func inlineEntries(l plan.Layer, uid, gid int) []layers.Entry {
	var ents []layers.Entry
	dirs := map[string]bool{}
	var addDir func(d string)
	addDir = func(d string) {
		if d == "/" || d == "." || dirs[d] {
			return
		}
		addDir(path.Dir(d))
		dirs[d] = true
		ents = append(ents, layers.Entry{Name: d, Dir: true, Mode: 0o755})
	}
	for _, name := range slices.Sorted(maps.Keys(l.Files)) {
		full := path.Join(l.Dest, name)
		addDir(path.Dir(full))
		ents = append(ents, layers.Entry{Name: full, Mode: 0o644, UID: uid, GID: gid, Data: []byte(l.Files[name])})
	}
	return ents
}

// restore puts the cached layers of a skipped step back into the
// staging copy, where the step would have left them: a layer's file at
// Dest/rel came from Output/Root/rel. Each is hard-linked from a tree
// extracted once into the cache (see tree.go), or extracted into the
// staging copy where links cannot reach it.
func (b *builder) restore(ctx context.Context, staging string, s plan.Step, ls []*layers.Layer) error {
	var specs []plan.Layer
	for _, l := range b.plan.Layers {
		if l.From == s.Name {
			specs = append(specs, l)
		}
	}
	linked, start := 0, time.Now()
	for i, l := range ls {
		if i >= len(specs) {
			break
		}
		spec := specs[i]
		dest := strings.TrimPrefix(path.Clean(spec.Dest), "/")
		into := filepath.Join(staging, filepath.FromSlash(s.Output), filepath.FromSlash(spec.Root))
		lt, err := b.linkCached(ctx, l, dest, into)
		if err == nil {
			b.linked[staging] = append(b.linked[staging], lt)
			linked++
			continue
		}
		if !errors.Is(err, errNoLinks) {
			return err
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return err
		}
		err = layers.Extract(ctx, rc, dest, into)
		rc.Close()
		if err != nil {
			return err
		}
	}
	how := "extracted"
	if linked > 0 {
		how = "linked from the cache's extracted copy"
	}
	b.logf("step %s: put its cached output back for the steps that need it (%s in %s)", s.Name, how, time.Since(start).Round(time.Millisecond))
	return nil
}

// linkCached hard-links layer l's tree into into, extracting it into the
// cache first when needed; a cached tree that changed since it was
// extracted is discarded and extracted again.
func (b *builder) linkCached(ctx context.Context, l *layers.Layer, dest, into string) (*linkedTree, error) {
	for attempt := 0; ; attempt++ {
		tree, err := b.cachedTree(ctx, l, dest)
		if err != nil {
			return nil, err
		}
		lt, err := linkTree(tree, into)
		if errors.Is(err, errTreeChanged) && attempt == 0 {
			b.logf("warning: the cache's extracted copy of layer %s changed since it was made (an earlier build wrote into it): extracting it again", treeName(tree))
			discardTree(tree)
			continue
		}
		return lt, err
	}
}

func treeName(dir string) string { return filepath.Base(dir) }

// checkLinked looks for files a step changed in the cached trees linked
// into its staging copy, and discards those trees (the layers they came
// from are unaffected; the next build extracts them again).
func (b *builder) checkLinked(staging, step string) {
	keep := b.linked[staging][:0]
	for _, lt := range b.linked[staging] {
		start := time.Now()
		f := lt.changed()
		b.logf("step %s: checked the %d files linked from the cache in %s", step, len(lt.files), time.Since(start).Round(time.Millisecond))
		if f != "" {
			b.logf("warning: step %s wrote into %s, a file it was given as a hard link to the cache's extracted copy of a cached step's output; that copy is discarded (the cached layer is unaffected) and the next build extracts it again", step, f)
			discardTree(lt.dir)
			continue
		}
		keep = append(keep, lt)
	}
	b.linked[staging] = keep
}

// shortCommand renders an argv for the log, a multi-line script as its
// first line.
func shortCommand(argv []string) string {
	var out []string
	for _, a := range argv {
		if i := strings.IndexByte(a, '\n'); i >= 0 {
			a = fmt.Sprintf("'%s …' (%d lines)", a[:i], strings.Count(a, "\n")+1)
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

func stepByName(p *plan.Plan, name string) plan.Step {
	for _, s := range p.Steps {
		if s.Name == name {
			return s
		}
	}
	return plan.Step{}
}

// existing keeps the include paths that exist (a provider may name
// optional directories); nil stays nil (everything).
func existing(dir string, include []string) []string {
	if include == nil {
		return nil
	}
	var out []string
	for _, inc := range include {
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(inc))); err == nil {
			out = append(out, inc)
		}
	}
	return out
}

func sortedKV(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k + "=" + m[k]
	}
	return out
}

// base resolves the plan's base for one platform.
func (b *builder) base(ctx context.Context, pl v1.Platform) (v1.Image, *BaseInfo, error) {
	switch b.plan.Base {
	case plan.BaseScratch:
		img, err := emptyImage(pl)
		return img, nil, err
	case plan.BaseStatic:
		img, err := StaticBase(ctx, b.opts.Store, b.opts.Created, pl)
		return img, nil, err
	}
	if b.opts.Resolve == nil {
		return nil, nil, fmt.Errorf("base %q needs a registry resolver", b.plan.Base)
	}
	return b.opts.Resolve(ctx, b.plan.Base, pl)
}

func emptyImage(pl v1.Platform) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	return mutate.ConfigFile(img, &v1.ConfigFile{
		OS: pl.OS, Architecture: pl.Architecture, Variant: pl.Variant,
		RootFS: v1.RootFS{Type: "layers"},
		Config: v1.Config{Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}},
	})
}

// StaticBase returns packer's builtin static base for one platform: one
// layer with /etc/passwd, /etc/group, /home/nonroot, /tmp and Mozilla's CA
// roots, built without any network.
func StaticBase(ctx context.Context, store *layers.Store, created time.Time, pl v1.Platform) (v1.Image, error) {
	img, err := emptyImage(pl)
	if err != nil {
		return nil, err
	}
	l, _, err := store.FromEntries(ctx, staticBaseEntries())
	if err != nil {
		return nil, fmt.Errorf("writing the static base layer: %w", err)
	}
	return mutate.Append(img, mutate.Addendum{
		Layer: l, MediaType: mustMediaType(l),
		History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "packer: static base (passwd, group, CA roots, /tmp)"},
	})
}

// runStep returns the layers taken from step s for platform pl, running
// the step only when its cache key is new.
func (b *builder) runStep(ctx context.Context, s plan.Step, pl v1.Platform, base v1.Image, staging *string, done map[string][]*layers.Layer, doneCached map[string]bool) ([]*layers.Layer, bool, error) {
	// Build args first; the step's own variables (GOOS, ...) win.
	env := map[string]string{}
	for k, v := range b.plan.BuildArgs {
		env[k] = v
	}
	for k, v := range expandEnv(s.Env, pl) {
		env[k] = v
	}
	var specs []plan.Layer
	for _, l := range b.plan.Layers {
		if l.From == s.Name {
			specs = append(specs, l)
		}
	}
	tc, err := b.toolchain(ctx, s, pl, base)
	if err != nil {
		return nil, false, err
	}
	// No Inputs means the whole context; Inputs none of which exist (an
	// optional pip.conf) mean no files at all.
	var inputs []layers.File
	if in := existing(b.dir, s.Inputs); len(s.Inputs) == 0 || len(in) > 0 {
		if inputs, err = layers.Collect(b.dir, b.ignore, in); err != nil {
			return nil, false, err
		}
	}
	inHash, err := layers.HashFiles(ctx, inputs)
	if err != nil {
		return nil, false, err
	}
	if b.systemKey != "" {
		tc += "\nsystem packages " + b.systemKey
	}
	key := stepKey(b.opts.Version, b.opts.Store.Compressor(), pl, s, env, specs, tc, inHash)

	if !b.opts.NoCache {
		if ls, ok := b.opts.Store.Lookup(key); ok && len(ls) == len(specs) {
			b.logf("step %s (%s): inputs unchanged, skipped (cache %s)", s.Name, pl.String(), key[:12])
			b.opts.Events.Emit(oci.Event{Type: "step-cached", Platform: pl.String(), Step: s.Name})
			b.report.StepsCached++
			return ls, true, nil
		}
		if b.opts.Store.Fetch != nil {
			// A registry cache is in use: say why it did not help.
			b.logf("step %s (%s): not in the local or the registry cache (key %s): its inputs (files, toolchain version, platform, packer version) differ from every cached build's", s.Name, pl.String(), key[:12])
		}
	}

	if *staging == "" {
		dir, err := b.stage(ctx)
		if err != nil {
			return nil, false, err
		}
		*staging = dir
	}
	for _, need := range s.Needs {
		if doneCached[need] && !b.restored[*staging+"\x00"+need] {
			if err := b.restore(ctx, *staging, stepByName(b.plan, need), done[need]); err != nil {
				return nil, false, fmt.Errorf("putting back the output of step %s: %w", need, err)
			}
			b.restored[*staging+"\x00"+need] = true
		}
	}
	for name, content := range s.Files {
		p := filepath.Join(*staging, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, false, err
		}
		if err := os.WriteFile(p, []byte(expandPlatform(content, pl)), 0o644); err != nil {
			return nil, false, err
		}
	}
	b.logf("step %s (%s): %s", s.Name, pl.String(), shortCommand(s.Run))
	start := time.Now()
	b.opts.Events.Emit(oci.Event{Type: "step-start", Platform: pl.String(), Step: s.Name, Command: shortCommand(s.Run)})
	argv := make([]string, len(s.Run))
	for i, a := range s.Run {
		argv[i] = expandPlatform(a, pl)
	}
	tail := &tailBuffer{max: 256 << 10}
	beat := newHeartbeat(b, s.Name, pl.String(), start)
	err = b.exec.Run(ctx, StepRun{
		Step: s, Argv: argv, Env: sortedKV(env), SecretEnv: sortedKV(b.opts.SecretEnv),
		Dir: *staging, Platform: pl, Base: runBase(base, b.plan.Base), Output: beat.wrap(io.MultiWriter(b.log, tail)),
		System: b.systemDirs,
	})
	beat.stop()
	b.checkLinked(*staging, s.Name)
	if err != nil {
		for _, h := range s.Errors {
			re, rerr := regexp.Compile(h.Pattern)
			if rerr != nil {
				continue
			}
			if m := re.FindSubmatchIndex(tail.buf); m != nil {
				// Platform placeholders first: Expand would read ${X} as a group.
				msg := string(re.Expand(nil, []byte(expandPlatform(h.Message, pl)), tail.buf, m))
				return nil, false, fmt.Errorf("step %s failed: %s", s.Name, msg)
			}
		}
		if ee := (*exec.Error)(nil); errors.As(err, &ee) {
			return nil, false, fmt.Errorf("step %s needs %q on PATH: %w; install it or choose another --base/--provider", s.Name, s.Run[0], err)
		}
		if ctx.Err() != nil {
			return nil, false, fmt.Errorf("step %s stopped: %w", s.Name, context.Cause(ctx))
		}
		if xe := (*exec.ExitError)(nil); errors.As(err, &xe) {
			if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				// Killed from outside (the OOM killer, a timeout): no hint
				// about the app's inputs, which are not the cause.
				return nil, false, fmt.Errorf("step %s (%s) was killed by signal %s; its output is above; if the machine ran out of memory, give the build more", s.Name, shortCommand(s.Run), ws.Signal())
			}
		}
		hint := ""
		if s.Hint != "" {
			hint = "; " + s.Hint
		}
		if xe := (*exec.ExitError)(nil); errors.As(err, &xe) && xe.ExitCode() == 127 && executorName(b.exec) == ModeImage {
			// The shell's "not found": the image lacks a tool, whatever
			// the step's usual advice says.
			hint = "; the step runs inside the image, which lacks a command it runs (named above): choose a base that has it (the official node and python images have npm and pip), add it with packer.toml's [system] build, or use --executor host"
		}
		why := ""
		if c := cause(tail.buf); c != "" {
			why = "\ncause: " + c
		}
		return nil, false, fmt.Errorf("step %s failed (%s): %w; its output is above%s%s", s.Name, shortCommand(s.Run), err, hint, why)
	}
	b.report.StepsRun++
	b.logf("step %s (%s): done in %s", s.Name, pl.String(), time.Since(start).Round(time.Millisecond))
	b.opts.Events.Emit(oci.Event{Type: "step-done", Platform: pl.String(), Step: s.Name, Duration: time.Since(start)})

	outDir := filepath.Join(*staging, filepath.FromSlash(s.Output))
	var ls []*layers.Layer
	for _, spec := range specs {
		root := filepath.Join(outDir, filepath.FromSlash(spec.Root))
		if len(spec.Include) > 0 && len(existing(root, spec.Include)) == 0 {
			return nil, false, fmt.Errorf("step %s did not produce what layer %s needs: none of %s exists", s.Name, spec.Name, strings.Join(spec.Include, ", "))
		}
		// Step outputs get the layer's own excludes only: no context
		// rules (dependency trees ship .env-named fixtures of their own).
		files, tarSpec, err := layerFiles(outDir, nil, spec)
		if err != nil {
			return nil, false, fmt.Errorf("step %s did not produce what layer %s needs: %w", s.Name, spec.Name, err)
		}
		if s.NativeCheck {
			if err := checkNative(files, pl); err != nil {
				return nil, false, fmt.Errorf("step %s: %w", s.Name, err)
			}
		}
		l, _, err := b.opts.Store.FromFiles(ctx, files, tarSpec)
		if err != nil {
			return nil, false, fmt.Errorf("writing layer %s: %w", spec.Name, err)
		}
		ls = append(ls, l)
		if b.needed(s.Name) {
			b.seedTree(s.Name, *staging, l, strings.TrimPrefix(path.Clean(spec.Dest), "/"), files)
		}
	}
	if err := b.opts.Store.Record(key, ls); err != nil {
		return nil, false, fmt.Errorf("recording step cache: %w", err)
	}
	return ls, false, nil
}

// needed says whether a later step needs step's output.
func (b *builder) needed(step string) bool {
	for _, s := range b.plan.Steps {
		if slices.Contains(s.Needs, step) {
			return true
		}
	}
	return false
}

// runSteps runs the plan's steps for pl in a staging copy of its own,
// and returns their layers and which came from the cache, by step.
func (b *builder) runSteps(ctx context.Context, pl v1.Platform, base v1.Image) (map[string][]*layers.Layer, map[string]bool, error) {
	stepLayers := map[string][]*layers.Layer{}
	stepCached := map[string]bool{}
	var stagingDir string
	for _, s := range b.plan.Steps {
		ls, cached, err := b.runStep(ctx, s, pl, base, &stagingDir, stepLayers, stepCached)
		if err != nil {
			return nil, nil, err
		}
		stepLayers[s.Name], stepCached[s.Name] = ls, cached
	}
	return stepLayers, stepCached, nil
}

// earlySteps are the steps run while the base's files were read.
type earlySteps struct {
	layers       map[string][]*layers.Layer
	cached       map[string]bool
	start        time.Time
	run, skipped int // the report's counts before them
}

// hostWithoutFacts says whether the steps run on this machine by what the
// base's config alone tells (its runtime versions in Env; the plan's
// where it tells none), with no system packages to install in the image.
func (b *builder) hostWithoutFacts(ctx context.Context, base v1.Image) bool {
	if len(b.plan.Steps) == 0 || !b.plan.System.Empty() {
		return false
	}
	switch b.opts.Executor.(type) {
	case Host:
		return true
	case Auto:
	default:
		return false
	}
	cfg, err := base.ConfigFile()
	if err != nil {
		return false
	}
	have, notes, err := CheckBaseRuntimes(b.plan, cfg.Config.Env, nil)
	if err != nil {
		return false // refused: said once the files are read
	}
	if b.hostHave == nil {
		b.hostHave = hostVersions(ctx, b.dir, b.plan.BaseRuntimes)
	}
	if c, err := decide(planChooseIn(b.plan, ModeAuto, b.hostHave, have)); err != nil || c.Mode != ModeHost {
		return false
	}
	// The toolchain checks aim at the versions the config names, as
	// checkRuntimes aims them (it logs the notes once the files are read).
	b.aimChecks(notes)
	return true
}

// stepsWhileReading reads the base's files on another goroutine while
// the steps run here on this machine. A failed read stops the steps; the
// read's error then wins over theirs.
func (b *builder) stepsWhileReading(ctx context.Context, pl v1.Platform, base v1.Image) (*baseFacts, *earlySteps, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	type read struct {
		f   *baseFacts
		err error
	}
	done := make(chan read, 1)
	start := time.Now()
	go func() {
		f, err := inspectBase(rctx, b.opts.Store, base)
		if err != nil {
			cancel(err)
		}
		done <- read{f, err}
	}()
	early := &earlySteps{start: time.Now(), run: b.report.StepsRun, skipped: b.report.StepsCached}
	b.exec = Host{}
	b.logf("steps (%s) start on this machine while the base's files are read (the base's config names no other runtime)", pl.String())
	var serr error
	early.layers, early.cached, serr = b.runSteps(rctx, pl, base)
	if serr != nil {
		cancel(serr) // the read is not needed any more
	}
	r := <-done
	switch {
	case r.err != nil && context.Cause(rctx) == r.err: // the read failed first
		return nil, nil, r.err
	case serr != nil:
		return nil, nil, serr
	case r.err != nil:
		return nil, nil, r.err
	}
	b.logf("base %s (%s): files read in %s, while the steps ran", b.plan.Base, pl.String(), time.Since(start).Round(time.Millisecond))
	return r.f, early, nil
}

// toolchain runs the step's toolchain probe once per build.
func (b *builder) toolchain(ctx context.Context, s plan.Step, pl v1.Platform, base v1.Image) (string, error) {
	if len(s.Toolchain) == 0 {
		return "", nil
	}
	k := executorName(b.exec) + "\x00" + pl.String() + "\x00" + strings.Join(s.Toolchain, "\x00")
	b.mu.Lock()
	defer b.mu.Unlock()
	if v, ok := b.tcCache[k]; ok {
		return v, nil
	}
	out, err := b.exec.Probe(ctx, Probe{Argv: s.Toolchain, Platform: pl, Base: runBase(base, b.plan.Base)})
	if err != nil {
		if executorName(b.exec) == ModeImage {
			return "", fmt.Errorf("step %s runs inside the image, and the image cannot run `%s`: %w %s; choose a base with the build tools (the official node and python images have npm and pip), or use --executor host", s.Name, strings.Join(s.Toolchain, " "), err, strings.TrimSpace(out))
		}
		return "", fmt.Errorf("step %s needs %s: `%s` failed: %w %s; install it and make sure it is on PATH", s.Name, s.Toolchain[0], strings.Join(s.Toolchain, " "), err, strings.TrimSpace(out))
	}
	b.tcCache[k] = out
	for _, c := range b.checks {
		re, err := regexp.Compile(c.Pattern)
		if err != nil {
			continue // plan.Validate refuses it
		}
		if m := re.FindStringSubmatch(strings.TrimSpace(out)); len(m) > 1 && m[1] != c.Want {
			b.logf("warning: %s", strings.NewReplacer("${have}", m[1], "${want}", c.Want).Replace(c.Message))
		}
	}
	return out, nil
}

// runBase is the base an executor sees: none for scratch and the builtin
// static base, which hold no toolchain.
func runBase(base v1.Image, ref string) v1.Image {
	if ref == plan.BaseScratch || ref == plan.BaseStatic {
		return nil
	}
	return base
}

// stage copies the context (after .dockerignore) into a private temporary
// directory where steps may write freely; the user's directory is never
// touched.
func (b *builder) stage(ctx context.Context) (string, error) {
	dir, err := tmpdir.Mkdir("", "packer-stage-")
	if err != nil {
		return "", fmt.Errorf("creating staging directory: %w", err)
	}
	b.staging = append(b.staging, dir)
	files, err := layers.Collect(b.dir, b.ignore, nil)
	if err != nil {
		return "", err
	}
	b.noteSecrets()
	if err := layers.CopyFiles(ctx, dir, files); err != nil {
		return "", fmt.Errorf("copying the context to a staging directory: %w", err)
	}
	return dir, nil
}

func expandPlatform(s string, pl v1.Platform) string {
	a, _ := plan.ArchOf(pl.Architecture)
	return strings.NewReplacer(plan.TargetOS, pl.OS, plan.TargetArch, pl.Architecture, plan.TargetVariant, pl.Variant,
		plan.NodeArch, a.Node, plan.TargetMachine, a.Uname).Replace(s)
}

func expandEnv(env map[string]string, pl v1.Platform) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		out[k] = expandPlatform(v, pl)
	}
	return out
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append([]byte{}, t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// mustMediaType is a stored layer's media type (gzip or zstd).
func mustMediaType(l *layers.Layer) types.MediaType {
	mt, _ := l.MediaType() // a stored layer's media type is never an error
	return mt
}
