// Package static plans images for static sites: a directory of HTML with
// no package.json, go.mod or Python project, served by packer's static
// file server (the one single-page apps get) on Node.js.
package static

import (
	"context"
	"fmt"
	"io/fs"

	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/detect/node"
	"github.com/packer-build/packer/plan"
)

// Provider plans static sites. It comes last in detection order: any
// other provider's marker wins (a Node.js app with an index.html is a
// Node.js app).
type Provider struct{}

var _ detect.Provider = Provider{}

// roots are where a site's index.html may be: the app directory itself,
// or the folder static site generators and hand-made sites use for what
// they publish.
var roots = []string{".", "public", "site", "_site", "www"}

func (Provider) Name() string { return "static" }
func (Provider) Hint() string { return "index.html (a static site)" }

// Detect implements detect.Provider.
func (Provider) Detect(_ context.Context, src fs.FS) (bool, error) {
	_, ok := siteRoot(src)
	return ok, nil
}

func siteRoot(src fs.FS) (string, bool) {
	for _, r := range roots {
		if detect.Exists(src, r+"/index.html") || (r == "." && detect.Exists(src, "index.html")) {
			return r, true
		}
	}
	return "", false
}

// Plan implements detect.Provider.
func (Provider) Plan(_ context.Context, src fs.FS, _ detect.Options) (*plan.Plan, error) {
	root, ok := siteRoot(src)
	if !ok {
		return nil, fmt.Errorf("no index.html at the top of the app or in %v; a static site needs one", roots[1:])
	}
	p := node.StaticServer(node.DefaultMajor, true)
	p.Provider = "static"
	layer := plan.Layer{Name: "site", From: plan.FromSource, Dest: node.AppDir + "/public",
		Exclude: []string{"packer.toml", ".dockerignore", "Dockerfile", "README*", "LICENSE*"}}
	where := "the app directory"
	if root != "." {
		layer.Root, layer.Exclude = root, nil
		where = root + "/"
	}
	p.Layers = append(p.Layers, layer)
	p.Evidence = []string{
		fmt.Sprintf("%s holds index.html and there is no package.json, go.mod or Python project: a static site", where),
		fmt.Sprintf("serving %s with packer's static file server on Node.js %d (clean URLs, 404.html)", where, node.DefaultMajor),
	}
	return p, nil
}
