// Package pipeline runs a whole build as a library: the plan's steps and
// layers (builder), the leak guard, the SBOMs, the signatures, and the
// publishers, in that order. Nothing is published unless every stage
// before publishing succeeded. The CLI maps its flags to a Request and
// prints the Result; it holds no pipeline logic of its own.
package pipeline

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/buildargs"
	"github.com/packer-build/packer/builder"
	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/oci"
	"github.com/packer-build/packer/plan"
	"github.com/packer-build/packer/publish"
	"github.com/packer-build/packer/sbom"
	"github.com/packer-build/packer/sign"
)

// Request is everything one build needs.
type Request struct {
	// Dir is the build context; Plan says what to build from it.
	Dir  string
	Plan *plan.Plan
	// Platforms to build: one gives an image, several an index.
	Platforms []v1.Platform
	// Secrets are visible to the steps only; the leak guard checks every
	// layer packer wrote for them before anything is published.
	Secrets buildargs.Secrets
	// Publishers receive the result, in order.
	Publishers []publish.Publisher
	// Engine builds the plan: nil is packer's own (builder.Build); the
	// BuildKit engine (scaleout.BuildKit) solves it on a BuildKit daemon.
	// Either way the result goes through the same guard, SBOMs, signing
	// and publishing.
	Engine Engine
	// SBOM says which SBOMs to make and where else to write them.
	SBOM SBOMOptions
	// Signer, when set, signs and attests the result for each registry
	// repository it is pushed to.
	Signer Signer
	// Source and Revision describe the sources for provenance (git's
	// origin URL and commit), when known.
	Source, Revision string
	// Created is the image's creation time (SOURCE_DATE_EPOCH, git, or
	// the constant).
	Created time.Time
	// Store holds layers and the step cache. With SBOM formats, Run sets
	// its Tee (when unset) so each new layer is scanned as it is written.
	Store *layers.Store
	// Resolve resolves registry and layout bases.
	Resolve builder.BaseResolver
	// Labels are added to the image config (after the plan's).
	Labels map[string]string
	// Version of packer: part of step cache keys, SBOMs and provenance.
	Version string
	// Events receives what the build does (steps, layers, phases,
	// publishing), for progress displays; nil discards them.
	Events oci.Events
	// NoCache runs every step even when its inputs are unchanged.
	NoCache bool
	// Executor runs the steps; nil means the host's toolchain.
	Executor builder.Executor
	// Log receives progress lines, one per line, without a prefix, and
	// the steps' output (secret values replaced by ****); nil discards.
	Log io.Writer
}

// Engine builds a plan for dir, as builder.Build does.
type Engine func(ctx context.Context, dir string, p *plan.Plan, opts builder.Options) (*oci.Built, *builder.Report, error)

// SBOMOptions configure the SBOMs attached to each image.
type SBOMOptions struct {
	// Formats: "spdx", "cyclonedx"; none makes no SBOM.
	Formats []string
	// Dir, when set, also receives the SBOM files.
	Dir string
	// Single attaches one complete document per format instead of the
	// image's document and one per layer (which a rebuild mostly finds
	// in the registry already).
	Single bool
	// Name is the image's name in the SBOM (the first tag's repository,
	// or the context directory's name).
	Name string
}

// Signer gives the key that signs a build, once the build is done (a
// keyless signer fetches its short-lived token and certificate then).
type Signer interface {
	Signer(ctx context.Context, logf func(format string, args ...any)) (*sign.Signer, error)
}

// Key signs with a key loaded beforehand (sign.KeySigner).
type Key struct{ Key *sign.Signer }

// Signer implements Signer.
func (k Key) Signer(context.Context, func(string, ...any)) (*sign.Signer, error) {
	return k.Key, nil
}

// Result is what a build made and where it went.
type Result struct {
	Built  *oci.Built
	Report *builder.Report
	Digest v1.Hash
	// SBOMs holds each image's complete SBOM document by format, by
	// digest.
	SBOMs map[v1.Hash]map[string][]byte
	// Signer signed the pushed images, when there was one.
	Signer *sign.Signer
	// Published says what each publisher wrote, in order.
	Published []*publish.Published
}

// Run builds req.Plan for req.Dir, checks it for leaked secrets, makes
// its SBOMs and signatures, and publishes it. An error at any stage
// publishes nothing; a publisher failing leaves the earlier ones' output
// in place (each one writes atomically).
func Run(ctx context.Context, req Request) (*Result, error) {
	if len(req.Platforms) == 0 {
		return nil, fmt.Errorf("no platform to build for")
	}
	for _, p := range req.Publishers {
		if err := p.Check(len(req.Platforms)); err != nil {
			return nil, err
		}
	}
	if req.Signer != nil && !publish.Pushes(req.Publishers) {
		return nil, fmt.Errorf("signing needs a registry to push to (cosign verifies signatures there)")
	}
	log := req.Log
	if log == nil {
		log = io.Discard
	}
	logf := func(format string, args ...any) { fmt.Fprintf(log, format+"\n", args...) }

	if short := req.Secrets.Unguarded(); len(short) > 0 {
		logf("warning: secrets %s are shorter than %d bytes; the leak guard cannot look for them", strings.Join(short, ", "), buildargs.MinGuardedLen)
	}
	secretEnv, unmount, err := req.Secrets.Mount()
	if err != nil {
		return nil, fmt.Errorf("preparing secrets for the build steps: %w", err)
	}
	defer unmount()
	redactor := req.Secrets.Redact(log)
	defer func() { _ = redactor.Flush() }() // the log's own write errors cannot be acted on

	if len(req.SBOM.Formats) > 0 && req.Store != nil && req.Store.Tee == nil {
		req.Store.Tee = sbom.Tee(req.Store)
	}
	start := time.Now()
	phase := func(name string, since time.Time) {
		req.Events.Emit(oci.Event{Type: "phase", Phase: name, Duration: time.Since(since)})
	}
	engine := req.Engine
	if engine == nil {
		engine = builder.Build
	}
	built, rep, err := engine(ctx, req.Dir, req.Plan, builder.Options{
		Platforms: req.Platforms,
		Store:     req.Store,
		NoCache:   req.NoCache,
		Created:   req.Created,
		Resolve:   req.Resolve,
		Labels:    req.Labels,
		Version:   req.Version,
		Log:       redactor,
		SecretEnv: secretEnv,
		Executor:  req.Executor,
		Events:    req.Events,
	})
	if err != nil {
		return nil, err
	}
	phase("build", start)
	checked := time.Now()
	if err := guard(built, rep, req.Secrets, req.Store); err != nil {
		return nil, err
	}
	phase("leak guard", checked)
	res := &Result{Built: built, Report: rep}
	if res.Digest, err = built.Digest(); err != nil {
		return nil, err
	}
	var att oci.Attachments
	sbomStart := time.Now()
	var attested map[v1.Hash]map[string][]byte
	if att.Referrers, res.SBOMs, attested, err = makeSBOMs(ctx, built, req, logf); err != nil {
		return nil, err
	}
	phase("sbom", sbomStart)
	signStart := time.Now()
	if req.Signer != nil {
		if res.Signer, err = req.Signer.Signer(ctx, logf); err != nil {
			return nil, err
		}
		// Signatures are made before anything is pushed: signing can fail
		// (a transparency log or certificate authority out of reach), and
		// then nothing is published.
		info := sign.BuildInfo{
			BuilderVersion: req.Version, Provider: req.Plan.Provider, Platforms: platformStrings(req.Platforms),
			BuildArgNames: slices.Sorted(maps.Keys(req.Plan.BuildArgs)), Created: req.Created,
			Source: req.Source, Revision: req.Revision,
		}
		if b := built.Base(); b != nil {
			info.BaseName, info.BaseDigest = b.Name, b.Digest.String()
		}
		att.Tagged = map[string]map[string]v1.Image{}
		for _, p := range req.Publishers {
			r, ok := p.(publish.Repositories)
			if !ok {
				continue
			}
			for _, repo := range r.Repositories() {
				if att.Tagged[repo.Name()] != nil {
					continue
				}
				if att.Tagged[repo.Name()], err = signatures(ctx, res.Signer, built, attested, info, repo.Name()); err != nil {
					return nil, err
				}
			}
		}
	}
	if req.Signer != nil {
		phase("sign", signStart)
	}
	for _, pl := range req.Platforms {
		for _, l := range rep.Layers[pl.String()] {
			req.Events.Emit(oci.Event{Type: "layer", Platform: pl.String(), Layer: l.Name, Digest: l.Digest.String(), Size: l.Size, Reused: l.Cached})
			state := "new"
			if l.Cached {
				state = "cached"
			}
			logf("%s layer %-8s %s %8s %s", pl.String(), l.Name, l.Digest.Hex[:12], humanSize(l.Size), state)
		}
	}
	logf("built %s in %s (%d steps run, %d skipped)", res.Digest, time.Since(start).Round(time.Millisecond), rep.StepsRun, rep.StepsCached)

	for _, p := range req.Publishers {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("publishing to %s: %w", p, context.Cause(ctx))
		}
		pubStart := time.Now()
		out, err := p.Publish(ctx, built, att)
		if err != nil {
			return nil, err
		}
		res.Published = append(res.Published, out)
		req.Events.Emit(oci.Event{Type: "published", Ref: p.String(), Digest: res.Digest.String(), Duration: time.Since(pubStart)})
		phase("publish "+p.String(), pubStart)
		logPublished(logf, p, out, res, req.SBOM.Dir != "")
	}
	return res, nil
}

func logPublished(logf func(string, ...any), p publish.Publisher, out *publish.Published, res *Result, sbomDir bool) {
	switch p.(type) {
	case *publish.Layout:
		logf("wrote OCI layout %s", out.Path)
	case *publish.Tarball:
		logf("wrote docker-archive %s (docker load -i %s)", out.Path, out.Path)
	case publish.Repositories:
		for _, t := range out.Tags {
			logf("pushed %s", t)
		}
		if res.Signer != nil {
			how := "--key cosign.pub"
			if res.Signer.Cert != nil {
				id, iss := res.Signer.Identity()
				how = fmt.Sprintf("--certificate-identity %s --certificate-oidc-issuer %s", id, iss)
			}
			logf("signed %s (cosign verify %s)", res.Digest, how)
		}
	default:
		logf("published to %s", p)
	}
	if len(out.Dropped) > 0 && !sbomDir {
		logf("%s cannot carry the SBOM; pass --sbom-dir DIR to keep it", p)
	}
}

func platformStrings(ps []v1.Platform) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return s
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
