package builder

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/packer-build/packer/layers"
	"github.com/packer-build/packer/plan"
)

// checkNative fails when an ELF file among files (a native addon, a shared
// object, a prebuilt binary) is for another machine than the target: it
// would not load in the image. The error names the package directory.
func checkNative(files []layers.File, pl v1.Platform) error {
	a, ok := plan.ArchOf(pl.Architecture)
	if !ok {
		return nil
	}
	want := a.ELF
	for _, f := range files {
		if !f.Mode.IsRegular() || f.Size < 64 {
			continue
		}
		if !(strings.HasSuffix(f.Rel, ".node") || strings.Contains(f.Rel, ".so")) {
			continue
		}
		r, err := os.Open(f.Abs)
		if err != nil {
			return err
		}
		ef, err := elf.NewFile(r)
		if err != nil {
			r.Close()
			var fe *elf.FormatError
			if errors.As(err, &fe) {
				continue // not ELF
			}
			continue
		}
		m := ef.Machine
		r.Close()
		if m != want {
			return fmt.Errorf("%s is native code for %s, but the image is for %s: package %s was compiled on this machine; build on a %s machine, or use a version of the package with prebuilt binaries for it", f.Rel, machineName(m), pl.String(), packageOf(f.Rel), pl.String())
		}
	}
	return nil
}

func machineName(m elf.Machine) string {
	for _, a := range plan.Archs {
		if a.ELF == m {
			return a.GOARCH
		}
	}
	return m.String()
}

// packageOf returns the node_modules package (or site-packages dist) a
// path belongs to.
func packageOf(rel string) string {
	parts := strings.Split(rel, "/")
	for i := len(parts) - 2; i >= 0; i-- {
		if parts[i] == "node_modules" || parts[i] == "site-packages" {
			if strings.HasPrefix(parts[i+1], "@") && i+2 < len(parts) {
				return parts[i+1] + "/" + parts[i+2]
			}
			return parts[i+1]
		}
	}
	return rel
}
