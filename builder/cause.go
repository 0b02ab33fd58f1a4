package builder

import (
	"regexp"
	"strings"
)

var (
	ansi = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)
	// go build: ./main.go:12:3: undefined: x
	goCompile = regexp.MustCompile(`^(\./)?[\w./@-]+\.go:\d+(:\d+)?: \S`)
	// npm 7+ ("npm ERR!") and npm 10+ ("npm error") lines.
	npmLine = regexp.MustCompile(`^npm (ERR!|error) ?`)
	// npm's lines around the cause that are not it.
	npmMeta = regexp.MustCompile(`^(code |errno |path |syscall |signal |command |cwd |workspace |location |at location|Lifecycle|A complete log|Log files|[0-9]+ verbose|$)`)
	// pip: ERROR: Could not find a version that satisfies ...
	pipError = regexp.MustCompile(`^ERROR: \S`)
	// A Python or JavaScript exception: ModuleNotFoundError: No module ...
	exception = regexp.MustCompile(`^(\w+\.)*\w*(Error|Exception): \S`)
	anyError  = regexp.MustCompile(`(?i)\b(error|failed|fatal|cannot|not found)\b`)
	// Build tools' first decisive line (Next.js, webpack, tsc, esbuild).
	buildError = regexp.MustCompile(`^(Failed to \S|Error: |Type error: |Module not found: |✘ \[ERROR\])|: error TS\d+:`)
)

// cause picks the line of a failed step's output that says why it failed,
// for the last line of the error: go's first compile error, npm's first
// error line that is not metadata, a build tool's first error (Next.js,
// webpack, tsc), pip's last ERROR, the last exception,
// else the last line that speaks of an error, else the last line.
func cause(out []byte) string {
	var lines []string
	for _, l := range strings.Split(ansi.ReplaceAllString(string(out), ""), "\n") {
		if l = strings.TrimSpace(strings.TrimRight(l, "\r")); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return ""
	}
	for _, l := range lines {
		if goCompile.MatchString(l) {
			return l
		}
	}
	for _, l := range lines {
		if m := npmLine.FindStringIndex(l); m != nil {
			if rest := l[m[1]:]; !npmMeta.MatchString(rest) {
				return "npm: " + rest
			}
		}
	}
	for _, l := range lines {
		if buildError.MatchString(l) {
			return l
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if pipError.MatchString(lines[i]) {
			return lines[i]
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if exception.MatchString(lines[i]) {
			return lines[i]
		}
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if anyError.MatchString(lines[i]) && !npmLine.MatchString(lines[i]) {
			return lines[i]
		}
	}
	return lines[len(lines)-1]
}
