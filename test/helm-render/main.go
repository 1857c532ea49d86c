// Command helm-render renders a Helm chart the way `helm template` does, offline, for tests:
// text/template + sprig (the engine Helm is built on) plus Helm's own functions (include, tpl,
// required, fail, toYaml, fromYaml, toJson, fromJson, lookup) and built-in objects (.Values,
// .Release, .Chart, .Capabilities, .Files, .Template).
//
//	helm-render [--json] [--notes] [--name R] [--namespace NS] [--revision N] [--is-upgrade] [--kube-version v1.31.0] CHART_DIR [VALUES.yaml...]
//	helm-render yaml2json FILE...   (every YAML document of the files as one JSON array)
//	helm-render values CHART_DIR [VALUES.yaml...]   (the merged values, as Helm validates them against values.schema.json)
//
// Build offline with Debian's packages: GO111MODULE=off GOPATH=/usr/share/gocode go build.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"sigs.k8s.io/yaml"
)

type values = map[string]interface{}

// kubeVersion mirrors Helm's .Capabilities.KubeVersion.
type kubeVersion struct{ Version, Major, Minor, GitVersion string }

func (k kubeVersion) String() string { return k.Version }

// apiVersions mirrors Helm's .Capabilities.APIVersions.
type apiVersions []string

func (a apiVersions) Has(v string) bool {
	for _, x := range a {
		if x == v {
			return true
		}
	}
	return false
}

type capabilities struct {
	KubeVersion kubeVersion
	APIVersions apiVersions
	HelmVersion map[string]string
}

// files mirrors Helm's .Files: every file of the chart outside templates/.
type files map[string][]byte

func (f files) Get(name string) string      { return string(f[name]) }
func (f files) GetBytes(name string) []byte { return f[name] }
func (f files) Glob(pattern string) files {
	out := files{}
	for name, data := range f {
		if ok, _ := path.Match(pattern, name); ok {
			out[name] = data
		}
	}
	return out
}

func main() {
	if len(os.Args) > 1 && (os.Args[1] == "yaml2json" || os.Args[1] == "values") {
		var err error
		if os.Args[1] == "yaml2json" {
			err = yaml2json(os.Args[2:])
		} else {
			err = printValues(os.Args[2:])
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "Error:", err)
			os.Exit(1)
		}
		return
	}
	asJSON := flag.Bool("json", false, "print {manifests:[{source,doc}],notes} as JSON")
	withNotes := flag.Bool("notes", false, "also render NOTES.txt (in YAML mode)")
	name := flag.String("name", "release", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kube := flag.String("kube-version", "v1.31.0", "Kubernetes version for .Capabilities")
	revision := flag.Int("revision", 1, "release revision (.Release.Revision)")
	isUpgrade := flag.Bool("is-upgrade", false, "render as `helm upgrade` does (.Release.IsUpgrade)")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: helm-render [flags] CHART_DIR [VALUES.yaml...]")
		os.Exit(2)
	}
	release := values{"Name": *name, "Namespace": *namespace, "Service": "Helm", "IsInstall": !*isUpgrade, "IsUpgrade": *isUpgrade, "Revision": *revision}
	if err := run(flag.Arg(0), flag.Args()[1:], release, *kube, *asJSON, *withNotes); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func readYAMLMap(file string) (values, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	out := values{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	return out, nil
}

// coalesce merges user values over chart defaults like Helm: maps merge, null deletes a key.
func coalesce(dst, src values) values {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sv, srcIsMap := v.(map[string]interface{})
		dv, dstIsMap := dst[k].(map[string]interface{})
		if srcIsMap && dstIsMap {
			dst[k] = coalesce(dv, sv)
		} else {
			dst[k] = v
		}
	}
	return dst
}

// chartObject turns Chart.yaml keys into the field names templates use (.Chart.AppVersion).
func chartObject(meta values) values {
	out := values{}
	for k, v := range meta {
		if k == "apiVersion" {
			out["APIVersion"] = v
			continue
		}
		out[strings.ToUpper(k[:1])+k[1:]] = v
	}
	return out
}

type chart struct {
	name      string
	meta      values
	defaults  values
	templates map[string]string
	files     files
}

func loadChart(dir string) (*chart, error) {
	meta, err := readYAMLMap(filepath.Join(dir, "Chart.yaml"))
	if err != nil {
		return nil, err
	}
	name, _ := meta["name"].(string)
	if name == "" {
		return nil, errors.New("Chart.yaml has no name")
	}
	defaults := values{}
	if _, err := os.Stat(filepath.Join(dir, "values.yaml")); err == nil {
		if defaults, err = readYAMLMap(filepath.Join(dir, "values.yaml")); err != nil {
			return nil, err
		}
	}
	c := &chart{name: name, meta: meta, defaults: defaults, templates: map[string]string{}, files: files{}}
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.HasPrefix(rel, "templates/") {
			c.templates[path.Join(name, rel)] = string(data)
		} else {
			c.files[rel] = data
		}
		return nil
	})
	return c, err
}

func toYAML(v interface{}) string {
	data, err := yaml.Marshal(v)
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(string(data), "\n")
}

func toJSON(v interface{}) string {
	data, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	return string(data)
}

// funcMap is sprig's text functions plus Helm's additions; like Helm, env and expandenv are removed.
func funcMap(t *template.Template) template.FuncMap {
	f := sprig.TxtFuncMap()
	delete(f, "env")
	delete(f, "expandenv")
	f["toYaml"] = toYAML
	f["toJson"] = toJSON
	f["fromYaml"] = func(s string) values {
		m := values{}
		if err := yaml.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["fromJson"] = func(s string) values {
		m := values{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			m["Error"] = err.Error()
		}
		return m
	}
	f["include"] = func(name string, data interface{}) (string, error) {
		var buf strings.Builder
		err := t.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	f["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := t.Clone()
		if err != nil {
			return "", err
		}
		parsed, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var buf strings.Builder
		err = parsed.Execute(&buf, data)
		return strings.ReplaceAll(buf.String(), "<no value>", ""), err
	}
	f["required"] = func(msg string, val interface{}) (interface{}, error) {
		if val == nil {
			return val, errors.New(msg)
		}
		if s, ok := val.(string); ok && s == "" {
			return val, errors.New(msg)
		}
		return val, nil
	}
	f["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	f["lookup"] = func(string, string, string, string) (values, error) { return values{}, nil }
	return f
}

func mergeValues(c *chart, valueFiles []string) (values, error) {
	vals := c.defaults
	for _, file := range valueFiles {
		user, err := readYAMLMap(file)
		if err != nil {
			return nil, err
		}
		vals = coalesce(vals, user)
	}
	return vals, nil
}

func printValues(args []string) error {
	if len(args) < 1 {
		return errors.New("usage: helm-render values CHART_DIR [VALUES.yaml...]")
	}
	c, err := loadChart(args[0])
	if err != nil {
		return err
	}
	vals, err := mergeValues(c, args[1:])
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(vals)
}

type rendered struct {
	Source string      `json:"source"`
	Doc    interface{} `json:"doc"`
}

var docSeparator = regexp.MustCompile(`(?m)^---\s*$`)

func run(dir string, valueFiles []string, release values, kube string, asJSON, withNotes bool) error {
	c, err := loadChart(dir)
	if err != nil {
		return err
	}
	vals, err := mergeValues(c, valueFiles)
	if err != nil {
		return err
	}
	parts := strings.SplitN(strings.TrimPrefix(kube, "v"), ".", 3)
	for len(parts) < 2 {
		parts = append(parts, "0")
	}
	top := values{
		"Values":  vals,
		"Chart":   chartObject(c.meta),
		"Release": release,
		"Capabilities": capabilities{
			KubeVersion: kubeVersion{Version: kube, Major: parts[0], Minor: parts[1], GitVersion: kube},
			APIVersions: apiVersions{"v1", "batch/v1", "rbac.authorization.k8s.io/v1", "coordination.k8s.io/v1", "events.k8s.io/v1"},
			HelmVersion: map[string]string{"Version": "v3.16.0"},
		},
		"Files": c.files,
	}
	t := template.New("gotpl").Option("missingkey=zero")
	t.Funcs(funcMap(t))
	names := make([]string, 0, len(c.templates))
	for name := range c.templates {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if _, err := t.New(name).Parse(c.templates[name]); err != nil {
			return err
		}
	}
	var out []rendered
	notes := ""
	var text bytes.Buffer
	for _, name := range names {
		base := path.Base(name)
		if strings.HasPrefix(base, "_") {
			continue
		}
		isNotes := base == "NOTES.txt"
		data := values{}
		for k, v := range top {
			data[k] = v
		}
		data["Template"] = values{"Name": name, "BasePath": path.Join(c.name, "templates")}
		var buf strings.Builder
		if err := t.ExecuteTemplate(&buf, name, data); err != nil {
			return err
		}
		result := strings.ReplaceAll(buf.String(), "<no value>", "")
		if isNotes {
			notes = result
			continue
		}
		for _, doc := range docSeparator.Split(result, -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			j, err := yaml.YAMLToJSONStrict([]byte(doc))
			if err != nil {
				return fmt.Errorf("%s: rendered YAML is invalid: %w\n%s", name, err, doc)
			}
			var obj interface{}
			if err := json.Unmarshal(j, &obj); err != nil {
				return err
			}
			out = append(out, rendered{Source: name, Doc: obj})
			fmt.Fprintf(&text, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(doc))
		}
	}
	if asJSON {
		return json.NewEncoder(os.Stdout).Encode(map[string]interface{}{"manifests": out, "notes": notes})
	}
	if withNotes {
		fmt.Fprintf(&text, "\nNOTES:\n%s", notes)
	}
	_, err = os.Stdout.Write(text.Bytes())
	return err
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			b.WriteString("\n")
		}
	}
	return b.String()
}

func yaml2json(paths []string) error {
	docs := []interface{}{}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, doc := range docSeparator.Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			j, err := yaml.YAMLToJSONStrict([]byte(doc))
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			var obj interface{}
			if err := json.Unmarshal(j, &obj); err != nil {
				return err
			}
			docs = append(docs, obj)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(docs)
}
