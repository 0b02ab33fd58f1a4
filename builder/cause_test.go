package builder

import "testing"

func TestCause(t *testing.T) {
	for _, tc := range []struct{ description, out, want string }{
		{"go compile error", "# example.com/app\n./main.go:12:3: undefined: hello\n./main.go:13:1: syntax error\n", "./main.go:12:3: undefined: hello"},
		{"npm 10", "\n> build\n> next build\n\nnpm error code E404\nnpm error 404 Not Found - GET left-padd - Not found\nnpm error 404\nnpm error A complete log of this run can be found in: /tmp/x.log\n", "npm: 404 Not Found - GET left-padd - Not found"},
		{"npm 8", "npm ERR! code ERESOLVE\nnpm ERR! ERESOLVE unable to resolve dependency tree\nnpm ERR! A complete log of this run can be found in:\n", "npm: ERESOLVE unable to resolve dependency tree"},
		{"pip", "Collecting markupsafe==2.1.1\nERROR: Could not find a version that satisfies the requirement markupsafe==2.1.1\nERROR: No matching distribution found for markupsafe==2.1.1\n", "ERROR: No matching distribution found for markupsafe==2.1.1"},
		{"python traceback", "Traceback (most recent call last):\n  File \"manage.py\", line 3, in <module>\nModuleNotFoundError: No module named 'django'\n", "ModuleNotFoundError: No module named 'django'"},
		{"next.js font", "   Creating an optimized production build ...\n\x1b[31mFailed to fetch font `Inter`.\x1b[39m\nURL: https://fonts.example/css2\n\n> Build failed because of webpack errors\n", "Failed to fetch font `Inter`."},
		{"tsc", "src/server.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'.\n", "src/server.ts(3,7): error TS2322: Type 'string' is not assignable to type 'number'."},
		{"nothing matches", "building\nstill building\nbye\n", "bye"},
		{"empty", "", ""},
	} {
		if got := cause([]byte(tc.out)); got != tc.want {
			t.Errorf("%s: cause() = %q, want %q", tc.description, got, tc.want)
		}
	}
}

func TestDpkgVersions(t *testing.T) {
	status := "Package: nodejs\nStatus: install ok installed\nVersion: 20.19.2+dfsg-1\n\nPackage: python3\nStatus: install ok installed\nVersion: 3.13.5-1\n\nPackage: python3-old\nStatus: deinstall ok config-files\nVersion: 1:3.9.2-3\n"
	got := dpkgVersions([]byte(status), []string{"nodejs", "python3", "python3-old"})
	if got["nodejs"] != "20.19.2" || got["python3"] != "3.13.5" || got["python3-old"] != "" {
		t.Errorf("dpkgVersions() = %v", got)
	}
}
