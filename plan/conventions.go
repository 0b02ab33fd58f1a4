package plan

import (
	"debug/elf"
	"fmt"
)

// Conventions every provider and the builder share, written once.
const (
	// AppDir is where an app lands in the image.
	AppDir = "/app"
	// NonRootUID is the uid (and gid) images run as unless told otherwise.
	NonRootUID = 65532
	// NonRootName and NonRootHome are its passwd entry's name and home.
	NonRootName = "nonroot"
	NonRootHome = "/home/nonroot"
	// InitPath is where packer's init script goes in the image, when the
	// base has no tini.
	InitPath = "/opt/packer/init"
	// ToolsDir holds packer's other small runtime files (preloads).
	ToolsDir = "/opt/packer"
)

// NonRootUser is the plan's user value for NonRootUID: "65532:65532".
var NonRootUser = fmt.Sprintf("%d:%d", NonRootUID, NonRootUID)

// Arch is one CPU architecture packer builds for, with the names each
// toolchain gives it.
type Arch struct {
	GOARCH string // Go, and the OCI platform: "amd64"
	Node   string // Node.js's process.arch: "x64"
	Uname  string // uname -m: "x86_64"
	ELF    elf.Machine
}

// Archs are the architectures packer builds linux images for.
var Archs = []Arch{
	{"amd64", "x64", "x86_64", elf.EM_X86_64},
	{"arm64", "arm64", "aarch64", elf.EM_AARCH64},
	{"arm", "arm", "armv7l", elf.EM_ARM},
	{"386", "ia32", "i686", elf.EM_386},
	{"ppc64le", "ppc64", "ppc64le", elf.EM_PPC64},
	{"s390x", "s390x", "s390x", elf.EM_S390},
	{"riscv64", "riscv64", "riscv64", elf.EM_RISCV},
}

// ArchOf returns the Arch for a GOARCH name.
func ArchOf(goarch string) (Arch, bool) {
	for _, a := range Archs {
		if a.GOARCH == goarch {
			return a, true
		}
	}
	return Arch{}, false
}
