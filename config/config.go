// Package config reads packer.toml and merges the user's settings from
// every source by precedence: flags > PACKER_* environment > packer.toml >
// detection. Each resolved value remembers where it came from, so
// `packer plan` can say why.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/packer-build/packer/plan"
)

// FileName is the config file packer reads from the app directory.
const FileName = "packer.toml"

// File is packer.toml. Every key is documented in README.md.
type File struct {
	Provider    string            `toml:"provider"`
	Base        string            `toml:"base"`
	Target      string            `toml:"target"`
	Executor    string            `toml:"executor"`
	Entrypoint  []string          `toml:"entrypoint"`
	Cmd         []string          `toml:"cmd"`
	User        string            `toml:"user"`
	Workdir     string            `toml:"workdir"`
	Ports       []int             `toml:"ports"`
	Platforms   []string          `toml:"platforms"`
	Include     []string          `toml:"include"`
	Exclude     []string          `toml:"exclude"`
	StopSignal  string            `toml:"stop_signal"`
	HealthPath  string            `toml:"health_path"`
	Liveness    string            `toml:"liveness_path"`
	Volumes     []string          `toml:"volumes"`
	Env         map[string]string `toml:"env"`
	BuildArgs   map[string]string `toml:"build_args"`
	Labels      map[string]string `toml:"labels"`
	Annotations map[string]string `toml:"annotations"`
	Healthcheck *Healthcheck      `toml:"healthcheck"`
	System      *System           `toml:"system"`
	Go          *Go               `toml:"go"`
}

// Go is packer.toml's [go] table, what ko users keep in .ko.yaml:
// linker flags (with template fields: see README), other build flags,
// build tags, environment for go build, and cgo.
type Go struct {
	Ldflags []string          `toml:"ldflags"`
	Flags   []string          `toml:"flags"`
	Tags    []string          `toml:"tags"`
	Env     map[string]string `toml:"env"`
	Cgo     bool              `toml:"cgo"`
}

// System is packer.toml's [system] table: distribution packages
// installed inside the image (build: during the steps only; run: shipped).
type System struct {
	Build []string `toml:"build"`
	Run   []string `toml:"run"`
}

// Healthcheck is packer.toml's [healthcheck] table.
type Healthcheck struct {
	// Cmd is a shell command (CMD-SHELL), or an argv array (CMD).
	Cmd         any    `toml:"cmd"`
	Interval    string `toml:"interval"`
	Timeout     string `toml:"timeout"`
	StartPeriod string `toml:"start_period"`
	Retries     int    `toml:"retries"`
}

// Load reads packer.toml from path. A missing file is not an error (nil,
// nil). Unknown keys and type errors name the line and, for a misspelt
// key, the nearest valid one.
func Load(path string) (*File, map[string]int, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return Parse(filepath.Base(path), raw)
}

// typeErr is go-toml's message for a value of the wrong type; it names
// Go types, which the error rewrites in the file's words.
var typeErr = regexp.MustCompile(`cannot decode TOML (\w+) into struct field config\.(\w+(?:\.\w+)*) of type (\S+)`)

// typeWords say what each Go field type takes in packer.toml.
var typeWords = map[string]string{
	"string": "a string (in quotes)", "[]string": `a list of strings (["a", "b"])`, "[]int": "a list of numbers ([8080])",
	"map[string]string": "a table of strings ([env] with KEY = \"value\" lines)", "int": "a number", "interface {}": "a string or a list of strings",
	"*config.Healthcheck": "a table ([healthcheck])", "*config.System": "a table ([system])", "*config.Go": "a table ([go])", "bool": "true or false",
}

// tomlKey is the packer.toml key of a go-toml field path (File.Ports →
// ports, Healthcheck.Interval → healthcheck.interval).
func tomlKey(field string) string {
	parts := strings.Split(field, ".")
	t := reflect.TypeOf(File{})
	var keys []string
	switch parts[0] {
	case "Healthcheck":
		t, keys = reflect.TypeOf(Healthcheck{}), []string{"healthcheck"}
	case "System":
		t, keys = reflect.TypeOf(System{}), []string{"system"}
	case "Go":
		t, keys = reflect.TypeOf(Go{}), []string{"go"}
	}
	for _, p := range parts[1:] {
		f, ok := t.FieldByName(p)
		if !ok {
			return strings.ToLower(p)
		}
		keys = append(keys, strings.Split(f.Tag.Get("toml"), ",")[0])
		t = f.Type
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	return strings.Join(keys, ".")
}

// Parse decodes packer.toml bytes; name is used in error messages. It also
// returns the line of each top-level key (and table.key), for origins.
func Parse(name string, raw []byte) (*File, map[string]int, error) {
	var f File
	dec := toml.NewDecoder(bytes.NewReader(raw)).DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		var strict *toml.StrictMissingError
		var derr *toml.DecodeError
		switch {
		case errors.As(err, &strict) && len(strict.Errors) > 0:
			e := strict.Errors[0]
			row, _ := e.Position()
			key := []string(e.Key())
			bad := key[len(key)-1]
			msg := fmt.Sprintf("%s:%d: unknown key %q", name, row, strings.Join(key, "."))
			if near := nearest(bad, validKeys(key[:len(key)-1])); near != "" {
				msg += fmt.Sprintf("; did you mean %q?", near)
			} else {
				msg += "; see README.md for the keys packer.toml takes"
			}
			return nil, nil, errors.New(msg)
		case errors.As(err, &derr):
			row, col := derr.Position()
			if m := typeErr.FindStringSubmatch(derr.Error()); m != nil {
				return nil, nil, fmt.Errorf("%s:%d:%d: %s must be %s, not a TOML %s; fix it there", name, row, col, tomlKey(m[2]), typeWords[m[3]], m[1])
			}
			return nil, nil, fmt.Errorf("%s:%d:%d: %s; fix the TOML there", name, row, col, derr.Error())
		}
		return nil, nil, fmt.Errorf("%s: %w", name, err)
	}
	if err := f.validate(name); err != nil {
		return nil, nil, err
	}
	return &f, keyLines(raw), nil
}

func (f *File) validate(name string) error {
	// A text setting is checked as its flag would be.
	for _, s := range Settings {
		if v, ok := s.File(f); ok && s.Parse != nil {
			if text, isText := v.(string); isText {
				if _, err := s.Parse([]string{text}); err != nil {
					return fmt.Errorf("%s: %s = %w", name, s.TOML, err)
				}
			}
		}
	}
	for _, p := range f.Ports {
		if p < 1 || p > 65535 {
			return fmt.Errorf("%s: port %d is out of range 1-65535", name, p)
		}
	}
	if sys := f.System; sys != nil {
		for key, l := range map[string][]string{"build": sys.Build, "run": sys.Run} {
			if _, err := packages(l); err != nil {
				return fmt.Errorf("%s: [system] %s: %w", name, key, err)
			}
		}
	}
	if h := f.Healthcheck; h != nil {
		if _, err := h.test(); err != nil {
			return fmt.Errorf("%s: [healthcheck] %w", name, err)
		}
		for k, v := range map[string]string{"interval": h.Interval, "timeout": h.Timeout, "start_period": h.StartPeriod} {
			if v == "" {
				continue
			}
			if _, err := time.ParseDuration(v); err != nil {
				return fmt.Errorf("%s: [healthcheck] %s = %q is not a duration like \"30s\"", name, k, v)
			}
		}
	}
	return nil
}

func (h *Healthcheck) test() ([]string, error) {
	switch c := h.Cmd.(type) {
	case string:
		if strings.TrimSpace(c) == "" {
			return nil, fmt.Errorf("cmd is empty")
		}
		return []string{"CMD-SHELL", c}, nil
	case []any:
		argv := []string{"CMD"}
		for _, a := range c {
			s, ok := a.(string)
			if !ok {
				return nil, fmt.Errorf("cmd must be a string or an array of strings")
			}
			argv = append(argv, s)
		}
		if len(argv) == 1 {
			return nil, fmt.Errorf("cmd is empty")
		}
		return argv, nil
	case nil:
		return nil, fmt.Errorf("needs cmd = \"...\"")
	}
	return nil, fmt.Errorf("cmd must be a string or an array of strings")
}

// validKeys lists the toml keys at a table path ("" = top level).
func validKeys(table []string) []string {
	t := reflect.TypeOf(File{})
	if len(table) == 1 && table[0] == "healthcheck" {
		t = reflect.TypeOf(Healthcheck{})
	} else if len(table) == 1 && table[0] == "system" {
		t = reflect.TypeOf(System{})
	} else if len(table) == 1 && table[0] == "go" {
		t = reflect.TypeOf(Go{})
	} else if len(table) > 0 {
		return nil
	}
	var out []string
	for i := 0; i < t.NumField(); i++ {
		out = append(out, strings.Split(t.Field(i).Tag.Get("toml"), ",")[0])
	}
	return out
}

// nearest returns the valid key closest to s by edit distance, when close.
func nearest(s string, valid []string) string {
	best, bestD := "", 1<<30
	norm := func(x string) string { return strings.ReplaceAll(strings.ToLower(x), "-", "_") }
	for _, v := range valid {
		d := Levenshtein(norm(s), norm(v))
		if d < bestD {
			best, bestD = v, d
		}
	}
	if bestD <= max(2, len(s)/3) {
		return best
	}
	return ""
}

// Levenshtein is the edit distance between a and b (for "did you mean"
// suggestions of keys and flags).
func Levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// keyLines finds the line of each key (top level "key", in tables
// "table.key"), for the origins packer plan prints. It reads the simple
// key = value form packer.toml uses; anything else just gets no line.
func keyLines(raw []byte) map[string]int {
	out := map[string]int{}
	table := ""
	for i, line := range strings.Split(string(raw), "\n") {
		l := strings.TrimSpace(line)
		if strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]") {
			table = strings.Trim(l, "[] ")
			out[table] = i + 1
			continue
		}
		k, _, ok := strings.Cut(l, "=")
		if !ok || strings.HasPrefix(l, "#") {
			continue
		}
		k = strings.Trim(strings.TrimSpace(k), `"'`)
		if table != "" {
			k = table + "." + k
		}
		if _, seen := out[k]; !seen {
			out[k] = i + 1
		}
	}
	return out
}

// Overrides turns packer.toml into overrides with origins
// "packer.toml:LINE".
func (f *File) Overrides(name string, lines map[string]int) *Overrides {
	o := NewOverrides()
	if f == nil {
		return o
	}
	at := func(key string) string {
		if l, ok := lines[key]; ok {
			return fmt.Sprintf("%s:%d", name, l)
		}
		return name
	}
	for _, s := range Settings {
		if v, ok := s.File(f); ok {
			o.Set(s.Key, v, at(s.TOML))
		}
	}
	for _, p := range f.Exclude {
		o.Context = append(o.Context, p)
	}
	for _, p := range f.Include {
		o.Context = append(o.Context, "!"+strings.TrimPrefix(p, "!"))
	}
	if len(o.Context) > 0 {
		o.origins["context"] = at("exclude")
		if _, ok := lines["exclude"]; !ok {
			o.origins["context"] = at("include")
		}
	}
	mapInto := func(table string, src map[string]string, dst *map[string]string) {
		for _, k := range slices.Sorted(maps.Keys(src)) {
			if *dst == nil {
				*dst = map[string]string{}
			}
			(*dst)[k] = src[k]
			o.origins[tableName(table)+"."+k] = at(table + "." + k)
		}
	}
	mapInto("env", f.Env, &o.Env)
	mapInto("build_args", f.BuildArgs, &o.BuildArgs)
	mapInto("labels", f.Labels, &o.Labels)
	mapInto("annotations", f.Annotations, &o.Annotations)
	if h := f.Healthcheck; h != nil {
		test, _ := h.test()
		o.Healthcheck = &plan.Healthcheck{Test: test, Interval: h.Interval, Timeout: h.Timeout, StartPeriod: h.StartPeriod, Retries: h.Retries}
		o.origins["healthcheck"] = at("healthcheck")
	}
	return o
}

func tableName(toml string) string {
	if toml == "build_args" {
		return "buildArgs"
	}
	return toml
}

// EnvOverrides reads the PACKER_* variables of Settings (PACKER_BASE,
// PACKER_PORT as a comma list, PACKER_ENTRYPOINT as words or JSON, ...).
func EnvOverrides(lookup func(string) (string, bool)) (*Overrides, error) {
	o := NewOverrides()
	for _, s := range Settings {
		if s.Env == "" {
			continue
		}
		raw, ok := lookup(s.Env)
		if !ok || raw == "" {
			continue
		}
		v, err := s.Parse([]string{raw})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Env, err)
		}
		o.Set(s.Key, v, s.Env)
	}
	return o, nil
}

// ParsePorts parses port numbers ("8080", "8080/tcp").
func ParsePorts(ss []string) ([]int, error) {
	var out []int
	for _, s := range ss {
		s = strings.TrimSuffix(strings.TrimSpace(s), "/tcp")
		p, err := strconv.Atoi(s)
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("invalid port %q: want a number 1-65535", s)
		}
		out = append(out, p)
	}
	return out, nil
}
