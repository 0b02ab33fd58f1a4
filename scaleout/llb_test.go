package scaleout

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	"github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/packer-build/packer/internal/testutil"
)

// dumpLLB renders a marshalled definition: each op's digest (what
// BuildKit caches by) and what it does, in the definition's order.
func dumpLLB(t *testing.T, def *llb.Definition) string {
	t.Helper()
	var b strings.Builder
	index := map[digest.Digest]int{}
	for i, dt := range def.Def {
		index[digest.FromBytes(dt)] = i
	}
	for i, dt := range def.Def {
		var op pb.Op
		if err := op.UnmarshalVT(dt); err != nil {
			t.Fatal(err)
		}
		var in []string
		for _, x := range op.Inputs {
			in = append(in, fmt.Sprintf("%d", index[digest.Digest(x.Digest)]))
		}
		fmt.Fprintf(&b, "op %d %s inputs [%s]", i, digest.FromBytes(dt), strings.Join(in, " "))
		if p := op.Platform; p != nil {
			fmt.Fprintf(&b, " platform %s/%s", p.OS, p.Architecture)
		}
		b.WriteString("\n")
		switch o := op.Op.(type) {
		case *pb.Op_Source:
			var attrs []string
			for k, v := range o.Source.Attrs {
				attrs = append(attrs, k+"="+v)
			}
			sort.Strings(attrs)
			fmt.Fprintf(&b, "  source %s %s\n", o.Source.Identifier, strings.Join(attrs, " "))
		case *pb.Op_Exec:
			m := o.Exec.Meta
			args := strings.Join(m.Args, " ")
			if j := strings.IndexByte(args, '\n'); j >= 0 {
				args = args[:j] + fmt.Sprintf(" … (%d lines)", strings.Count(strings.Join(m.Args, " "), "\n")+1)
			}
			fmt.Fprintf(&b, "  exec %s\n  cwd %s env %s\n", args, m.Cwd, strings.Join(m.Env, " "))
			for _, mt := range o.Exec.Mounts {
				what := fmt.Sprintf("input %d", mt.Input)
				switch {
				case mt.CacheOpt != nil:
					what = "cache " + mt.CacheOpt.ID
				case mt.SecretOpt != nil:
					what = "secret " + mt.SecretOpt.ID
				}
				fmt.Fprintf(&b, "  mount %s %s readonly=%v\n", mt.Dest, what, mt.Readonly)
			}
		case *pb.Op_File:
			for _, a := range o.File.Actions {
				switch x := a.Action.(type) {
				case *pb.FileAction_Copy:
					fmt.Fprintf(&b, "  copy %s → %s include %v exclude %v\n", x.Copy.Src, x.Copy.Dest, x.Copy.IncludePatterns, x.Copy.ExcludePatterns)
				case *pb.FileAction_Mkdir:
					fmt.Fprintf(&b, "  mkdir %s\n", x.Mkdir.Path)
				case *pb.FileAction_Mkfile:
					fmt.Fprintf(&b, "  mkfile %s\n", x.Mkfile.Path)
				}
			}
		}
	}
	return b.String()
}

// TestLLBGolden pins the marshalled LLB of a Go server (a build image,
// a static base, a cross build for arm64 on amd64), an npm app with a
// build step and a Python app: go test ./scaleout -update rewrites them.
// The same plan must give the same definition every time (BuildKit's
// cache is keyed by these digests).
func TestLLBGolden(t *testing.T) {
	amd64 := ocispecs.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	env := []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, tc := range []struct {
		name   string
		target ocispecs.Platform
		base   string
	}{
		{"go-server", arm64, ""},
		{"node-nest", amd64, "registry.example/library/node:22-slim@sha256:" + strings.Repeat("a", 64)},
		{"py-flask", amd64, "registry.example/library/python:3.13-slim@sha256:" + strings.Repeat("b", 64)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The build image as the engine passes it: resolved and pinned.
			o := LLBOptions{Platform: tc.target, BuildPlatform: amd64, Base: tc.base, BaseEnv: env, BuildEnv: env,
				BuildImage: "registry.example/library/golang:1.22@sha256:" + strings.Repeat("c", 64),
				Ignore:     []string{"**/.git", "node_modules"}, Context: contextOf(t, tc.name), Secrets: []Secret{{ID: "API_TOKEN", Env: true}}, CA: true, ContextID: "golden"}
			render := func() string {
				st, err := LLB(fixturePlan(t, tc.name), o)
				if err != nil {
					t.Fatal(err)
				}
				def, err := st.Marshal(context.Background(), llb.Platform(tc.target))
				if err != nil {
					t.Fatal(err)
				}
				return dumpLLB(t, def)
			}
			first := render()
			if again := render(); again != first {
				a, b := strings.Split(first, "\n"), strings.Split(again, "\n")
				for i := range min(len(a), len(b)) {
					if a[i] != b[i] {
						t.Fatalf("two conversions of the same plan differ at line %d:\n%s\n%s\n%s\n%s", i+1, a[i], a[i+1], b[i], b[i+1])
					}
				}
				t.Fatalf("two conversions of the same plan differ in length")
			}
			testutil.Golden(t, filepath.Join("testdata", tc.name+".llb"), []byte(first))
		})
	}
}
