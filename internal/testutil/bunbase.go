package testutil

import (
	"fmt"
	"runtime"
	"testing"
)

// BunVersion is the Bun of BunBase.
const BunVersion = "1.4.5"

var bunBase onceBase

// BunBase returns "oci:DIR:bun": the Debian test base with Bun in
// /usr/local/bin (and bunx beside it), as the oven/bun images lay it out.
// The binary comes from the npm registry (@oven/bun-linux-<arch>, the
// package npm's bun installs). Built once per TestCacheDir.
func BunBase(t testing.TB) string {
	t.Helper()
	debian := DebianBase(t)
	return bunBase.get(t, "Bun "+BunVersion, func() (string, error) {
		arch := map[string]string{"amd64": "x64", "arm64": "aarch64"}[runtime.GOARCH]
		if arch == "" {
			return "", fmt.Errorf("no Bun package for %s", runtime.GOARCH)
		}
		return npmBase(debian, npmBaseSpec{
			name: "bun" + BunVersion, tag: "bun",
			packages: []npmPackage{{"@oven/bun-linux-" + arch + "@" + BunVersion, func(n string) string {
				if n == "bin/bun" {
					return "usr/local/bin/bun"
				}
				return ""
			}}},
			symlinks: map[string]string{"usr/local/bin/bunx": "bun"},
		})
	})
}
