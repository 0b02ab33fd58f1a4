package builtin

import (
	"context"
	"testing"
	"testing/fstest"

	"github.com/packer-build/packer/detect"
)

// manifests are the files the detectors read; the fuzzer writes one of
// them (by index) with arbitrary content beside a fixed start file.
var manifests = []string{
	"package.json", "package-lock.json", "pnpm-lock.yaml", "pnpm-workspace.yaml", "yarn.lock", "bun.lock", ".yarnrc.yml", ".nvmrc",
	"go.mod", "go.work", "requirements.txt", "pyproject.toml", "uv.lock", "Pipfile", "Pipfile.lock", "poetry.lock", "pdm.lock",
	".python-version", "runtime.txt", "Procfile", "next.config.js", "manage.py",
}

// FuzzDetect: whatever a project's manifests hold, detection returns a
// valid plan or an error; it never panics or hangs.
func FuzzDetect(f *testing.F) {
	f.Add(uint8(0), []byte(`{"name":"a","scripts":{"start":"node server.js"},"dependencies":{"express":"^4"}}`))
	f.Add(uint8(1), []byte(`{"lockfileVersion":3,"packages":{"":{"dependencies":{"x":"1"}},"node_modules/x":{"version":"1"}}}`))
	f.Add(uint8(2), []byte("lockfileVersion: '9.0'\nimporters:\n  .:\n    dependencies: {}\n"))
	f.Add(uint8(3), []byte("packages: [\"packages/*\"]\n"))
	f.Add(uint8(8), []byte("module example.com/app\n\ngo 1.22\n"))
	f.Add(uint8(10), []byte("flask==3.1.0\n-r other.txt\n--hash=sha256:00\n"))
	f.Add(uint8(11), []byte("[project]\nname = \"a\"\ndependencies = [\"fastapi>=0.1\"]\nrequires-python = \">=3.12\"\n"))
	f.Add(uint8(12), []byte("version = 1\n[[package]]\nname = \"a\"\nversion = \"1\"\nsource = { virtual = \".\" }\n"))
	f.Add(uint8(14), []byte(`{"default":{"flask":{"version":"==3.1.0","hashes":["sha256:00"]}}}`))
	f.Add(uint8(19), []byte("web: gunicorn app:app\n"))
	f.Fuzz(func(t *testing.T, which uint8, content []byte) {
		name := manifests[int(which)%len(manifests)]
		src := fstest.MapFS{
			name:        {Data: content},
			"server.js": {Data: []byte("require('http').createServer().listen(process.env.PORT)\n")},
			"app.py":    {Data: []byte("from flask import Flask\napp = Flask(__name__)\n")},
			"main.go":   {Data: []byte("package main\nfunc main() {}\n")},
		}
		p, err := detect.Run(context.Background(), src, detect.Options{AllowUnlocked: true}, Providers(), "")
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("detect gave an invalid plan for %s %q: %v", name, content, err)
		}
	})
}
