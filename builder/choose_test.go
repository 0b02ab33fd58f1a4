package builder

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDecide: where steps run, for each kind of input, and the reason
// named.
func TestDecide(t *testing.T) {
	py := func(host, image string) []runtimeSide {
		return []runtimeSide{{Name: "Python", Want: "3.13", Host: host, Image: image}}
	}
	node := func(host, image string) []runtimeSide {
		return []runtimeSide{{Name: "Node.js", Want: "22", Host: host, Image: image}}
	}
	cannot := errors.New("it needs root")
	for _, c := range []struct {
		name     string
		in       chooseIn
		mode     string
		fallback bool
		why      string
		err      string
	}{
		{"python minor differs", chooseIn{runtimes: py("3.11.7", "3.13.5"), hasSteps: true}, ModeImage, false, "this machine has Python 3.11.7, the image Python 3.13.5", ""},
		{"python patch differs only", chooseIn{runtimes: py("3.13.0", "3.13.5"), hasSteps: true}, ModeHost, false, "this machine's Python 3.13.0 matches the image's 3.13.5", ""},
		{"image version unknown: the plan's", chooseIn{runtimes: py("3.11.7", ""), hasSteps: true}, ModeImage, false, "the image Python 3.13", ""},
		{"no python here", chooseIn{runtimes: py("", "3.13.5"), hasSteps: true}, ModeImage, false, "this machine has no Python", ""},
		{"node major differs", chooseIn{runtimes: node("20.20.2", "22.11.0"), hasSteps: true}, ModeImage, false, "Node.js 20.20.2, the image Node.js 22.11.0", ""},
		{"node minor differs only", chooseIn{runtimes: node("22.1.0", "22.11.0"), hasSteps: true}, ModeHost, false, "matches", ""},
		{"libc differs", chooseIn{runtimes: node("22.1.0", "22.11.0"), baseMusl: true, hasSteps: true}, ModeImage, false, "C library is glibc, the image's musl", ""},
		{"cannot run here: fallback", chooseIn{runtimes: py("3.11.7", "3.13.5"), hasSteps: true, unavailable: cannot}, ModeHost, true, "but steps cannot run inside the image here (it needs root)", ""},
		{"go: no runtime", chooseIn{hasSteps: true}, ModeHost, false, "Go builds for any platform", ""},
		{"no steps", chooseIn{runtimes: py("3.11.7", "3.13.5")}, ModeHost, false, "no steps", ""},
		{"scratch base", chooseIn{runtimes: py("3.11.7", "3.13.5"), hasSteps: true, noBase: true}, ModeHost, false, "no toolchain", ""},
		{"forced host", chooseIn{mode: ModeHost, runtimes: py("3.11.7", "3.13.5"), hasSteps: true}, ModeHost, false, "asked for", ""},
		{"forced image", chooseIn{mode: ModeImage, runtimes: py("3.13.1", "3.13.5"), hasSteps: true}, ModeImage, false, "asked for", ""},
		{"system packages: the image", chooseIn{runtimes: py("3.13.1", "3.13.5"), hasSteps: true, system: []string{"libpq5"}}, ModeImage, false, "installs system packages (libpq5)", ""},
		{"system packages cannot run here", chooseIn{hasSteps: true, system: []string{"libpq5"}, unavailable: cannot}, "", false, "", "system packages (libpq5) are installed inside the image, and steps cannot run inside the image here: it needs root; or use --executor host to skip them, if this machine and the base already have what they provide"},
		{"system packages on scratch", chooseIn{hasSteps: true, system: []string{"libpq5"}, noBase: true}, "", false, "", "system packages (libpq5) are installed with the base's package manager, and this base has none: choose a Debian, Ubuntu or Alpine base"},
		{"system packages, forced host", chooseIn{mode: ModeHost, hasSteps: true, system: []string{"libpq5"}}, ModeHost, false, "asked for", ""},
		{"forced image cannot run", chooseIn{mode: ModeImage, hasSteps: true, unavailable: cannot}, "", false, "", "executor image: it needs root"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.in.mode == "" {
				c.in.mode = ModeAuto
			}
			got, err := decide(c.in)
			if c.err != "" {
				if err == nil || err.Error() != c.err {
					t.Fatalf("decide() = %+v, %v; want error %q", got, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Mode != c.mode || got.Fallback != c.fallback || !strings.Contains(got.Why, c.why) {
				t.Errorf("decide() = %+v; want mode %s, fallback %v, why containing %q", got, c.mode, c.fallback, c.why)
			}
		})
	}
}

// TestEmulator: a foreign architecture runs inside the image only through
// qemu-user registered with binfmt_misc's F flag (the emulator is opened
// at registration, so it works inside the chroot).
func TestEmulator(t *testing.T) {
	dir := t.TempDir()
	old := binfmtDir
	binfmtDir = dir
	t.Cleanup(func() { binfmtDir = old })
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("status", "enabled\n")
	if _, err := emulator("arm64"); err == nil || !strings.Contains(err.Error(), "no qemu-user registered in binfmt_misc") {
		t.Errorf("no registration: %v", err)
	}
	write("qemu-aarch64", "enabled\ninterpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P\nflags: P\noffset 0\nmagic 7f454c46\n")
	if _, err := emulator("arm64"); err == nil {
		t.Errorf("a registration whose interpreter is not qemu-aarch64 was taken")
	}
	write("qemu-aarch64", "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: PO\noffset 0\n")
	if _, err := emulator("arm64"); err == nil || !strings.Contains(err.Error(), "without binfmt_misc's F flag") {
		t.Errorf("no F flag: %v", err)
	}
	write("qemu-aarch64", "enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: POCF\noffset 0\n")
	if q, err := emulator("arm64"); err != nil || q != "/usr/bin/qemu-aarch64-static" {
		t.Errorf("emulator(arm64) = %q, %v", q, err)
	}
	write("qemu-aarch64", "disabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: POCF\n")
	if _, err := emulator("arm64"); err == nil {
		t.Errorf("a disabled registration was taken")
	}
}
