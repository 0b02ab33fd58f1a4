package testutil

import (
	"runtime"
	"sync"
	"testing"
)

// BunVersion is the Bun of BunBase.
const BunVersion = "1.4.5"

var bunBaseOnce sync.Once
var bunBaseRef, bunBaseErr string

// BunBase returns "oci:DIR:bun": the Debian test base with Bun in
// /usr/local/bin (and bunx beside it), as the oven/bun images lay it out.
// The binary comes from the npm registry (@oven/bun-linux-<arch>, the
// package npm's bun installs). Built once per TestCacheDir.
func BunBase(t testing.TB) string {
	t.Helper()
	debian := DebianBase(t)
	bunBaseOnce.Do(func() {
		arch := map[string]string{"amd64": "x64", "arm64": "aarch64"}[runtime.GOARCH]
		if arch == "" {
			bunBaseErr = "no Bun package for " + runtime.GOARCH
			return
		}
		ref, err := npmBase(debian, npmBaseSpec{
			name: "bun" + BunVersion, tag: "bun",
			packages: []npmPackage{{"@oven/bun-linux-" + arch + "@" + BunVersion, func(n string) string {
				if n == "bin/bun" {
					return "usr/local/bin/bun"
				}
				return ""
			}}},
			symlinks: map[string]string{"usr/local/bin/bunx": "bun"},
		})
		bunBaseRef = ref
		if err != nil {
			bunBaseErr = err.Error()
		}
	})
	if bunBaseErr != "" {
		if InCI() {
			t.Fatalf("Bun %s test base: %s", BunVersion, bunBaseErr)
		}
		t.Skipf("SKIP: Bun %s test base unavailable: %s", BunVersion, bunBaseErr)
	}
	return bunBaseRef
}
