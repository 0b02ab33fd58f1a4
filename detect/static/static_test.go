package static_test

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/packer-build/packer/detect"
	"github.com/packer-build/packer/detect/builtin"
	"github.com/packer-build/packer/detect/static"
)

func TestStaticSite(t *testing.T) {
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for _, tc := range []struct {
		description string
		src         fstest.MapFS
		provider    string // "" when nothing matches
		root        string
	}{
		{"index.html at the top", fstest.MapFS{"index.html": f("<h1>hi</h1>"), "css/a.css": f("")}, "static", ""},
		{"a public/ folder", fstest.MapFS{"public/index.html": f("<h1>hi</h1>"), "README.md": f("")}, "static", "public"},
		{"Jekyll's output", fstest.MapFS{"_site/index.html": f("<h1>hi</h1>"), "_config.yml": f("")}, "static", "_site"},
		{"a Node.js app with an index.html", fstest.MapFS{"index.html": f(""), "package.json": f(`{"scripts":{"start":"node s.js"}}`), "package-lock.json": f(`{"lockfileVersion":3,"packages":{}}`), "s.js": f("")}, "node", ""},
		{"a Python app with templates", fstest.MapFS{"templates/index.html": f(""), "requirements.txt": f("flask==3.1.0\ngunicorn==23.0.0\n"), "app.py": f("from flask import Flask\napp = Flask(__name__)\n")}, "python", ""},
		{"no HTML at all", fstest.MapFS{"notes.txt": f("")}, "", ""},
	} {
		t.Run(tc.description, func(t *testing.T) {
			p, err := detect.Run(context.Background(), tc.src, detect.Options{}, builtin.Providers(), "")
			if tc.provider == "" {
				if err == nil {
					t.Fatalf("detect.Run() = %s plan, want no provider", p.Provider)
				}
				return
			}
			if err != nil {
				t.Fatalf("detect.Run() = %v", err)
			}
			if p.Provider != tc.provider {
				t.Fatalf("provider = %s, want %s", p.Provider, tc.provider)
			}
			if tc.provider != "static" {
				return
			}
			site := p.Layers[len(p.Layers)-1]
			if site.Name != "site" || site.Root != tc.root || site.Dest != "/app/public" {
				t.Errorf("site layer = %+v, want root %q to /app/public", site, tc.root)
			}
			if p.Env["PACKER_STATIC"] != "site" || p.User != "65532:65532" {
				t.Errorf("env %v, user %q", p.Env, p.User)
			}
		})
	}
	if (static.Provider{}).Name() != "static" {
		t.Errorf("Name() = %q", static.Provider{}.Name())
	}
}

// A static site's own main.js (browser code) does not make it a Node.js
// app; a server.js using Node's modules does.
func TestBrowserScriptIsNotNode(t *testing.T) {
	f := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	site := fstest.MapFS{"index.html": f("<script src=main.js></script>"), "main.js": f("document.querySelector('h1').textContent = 'hi';\n")}
	if p, err := detect.Run(context.Background(), site, detect.Options{}, builtin.Providers(), ""); err != nil || p.Provider != "static" {
		t.Errorf("site with main.js: %v, %v; want static", p, err)
	}
	server := fstest.MapFS{"server.js": f("const http = require('http');\nhttp.createServer((q, s) => s.end('hi')).listen(process.env.PORT);\n")}
	if p, err := detect.Run(context.Background(), server, detect.Options{}, builtin.Providers(), ""); err != nil || p.Provider != "node" || p.Entrypoint[1] != "server.js" {
		t.Errorf("bare server.js: %v, %v; want node server.js", p, err)
	}
}
