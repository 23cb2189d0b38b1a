package main

import (
	"encoding/json"
	"net"
	"os"
	"path"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
	"go.yaml.in/yaml/v3"
)

// image is what the final stage of the Dockerfile gives a container.
type image struct {
	env        map[string]string
	volumes    []string
	user       string
	workdir    string
	exposed    []string
	entrypoint []string
	chowned    map[string]string // destination of a COPY --chown: its owner
	labels     map[string]string // LABEL, values as written (e.g. "${VERSION}")
	from       string            // the stage's base image
}

// newImage is the empty configuration a stage starts with.
func newImage() image {
	return image{env: map[string]string{}, chowned: map[string]string{}, labels: map[string]string{}}
}

// readImage reads the instructions of the Dockerfile's last stage (no Docker
// engine is needed: the settings are checked, not the build).
func readImage(t *testing.T, file string) image {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var cont string
	for _, line := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(line)
		if cont == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if next, ok := strings.CutSuffix(trimmed, `\`); ok {
			cont += next + " "
			continue
		}
		lines = append(lines, cont+trimmed)
		cont = ""
	}
	img := newImage()
	for _, line := range lines {
		instr, args, _ := strings.Cut(line, " ")
		args = strings.TrimSpace(args)
		switch strings.ToUpper(instr) {
		case "FROM":
			img = newImage() // a new stage
			img.from = strings.Fields(args)[0]
		case "ENV":
			for _, kv := range strings.Fields(args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile: ENV %s: use the KEY=VALUE form", args)
				}
				img.env[k] = strings.Trim(v, `"`)
			}
		case "VOLUME":
			img.volumes = append(img.volumes, jsonOrFields(t, args)...)
		case "USER":
			img.user = args
		case "WORKDIR":
			img.workdir = args
		case "EXPOSE":
			img.exposed = append(img.exposed, strings.Fields(args)...)
		case "ENTRYPOINT":
			img.entrypoint = jsonOrFields(t, args)
		case "LABEL":
			for _, kv := range shellWords(args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile: LABEL %s: use the KEY=VALUE form", args)
				}
				img.labels[k] = v
			}
		case "COPY":
			fields := strings.Fields(args)
			for _, f := range fields {
				if owner, ok := strings.CutPrefix(f, "--chown="); ok {
					img.chowned[fields[len(fields)-1]] = owner
				}
			}
		}
	}
	return img
}

// shellWords splits args at blanks outside double quotes, and drops the
// quotes: what a Dockerfile's LABEL makes of key="a value" pairs.
func shellWords(args string) []string {
	var words []string
	var word strings.Builder
	quoted, inWord := false, false
	for _, r := range args {
		switch {
		case r == '"':
			quoted, inWord = !quoted, true
		case (r == ' ' || r == '\t') && !quoted:
			if inWord {
				words = append(words, word.String())
				word.Reset()
			}
			inWord = false
		default:
			word.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, word.String())
	}
	return words
}

func jsonOrFields(t *testing.T, args string) []string {
	t.Helper()
	if !strings.HasPrefix(args, "[") {
		return strings.Fields(args)
	}
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil {
		t.Fatalf("Dockerfile: %s: %v", args, err)
	}
	return out
}

// containerRun is one way the documentation runs the image.
type containerRun struct {
	where   string
	args    []string          // given to the entrypoint
	env     map[string]string // -e, or a service's environment
	ports   []string          // container side of -p or ports
	volumes []string          // container side of -v or volumes
}

// containerDoc is the user documentation of the image.
const containerDoc = "../../docs/container.md"

// docDockerRuns returns the `docker run` commands of docs/container.md's
// Docker section, and the section's text.
func docDockerRuns(t *testing.T) ([]containerRun, string) {
	t.Helper()
	section := markdownSection(t, containerDoc, "Docker")
	var runs []containerRun
	for _, line := range strings.Split(section, "\n") {
		rest, ok := strings.CutPrefix(line, "docker run ")
		if !ok {
			continue
		}
		run := containerRun{where: "docs/container.md: " + line, env: map[string]string{}}
		fields := strings.Fields(rest)
		for i := 0; i < len(fields); i++ {
			switch f := fields[i]; f {
			case "-p", "-v", "-e":
				i++
				if i == len(fields) {
					t.Fatalf("%s: %s without a value", run.where, f)
				}
				switch v := fields[i]; f {
				case "-p":
					run.ports = append(run.ports, v[strings.LastIndex(v, ":")+1:])
				case "-v":
					run.volumes = append(run.volumes, strings.Split(v, ":")[1])
				case "-e":
					k, val, _ := strings.Cut(v, "=")
					run.env[k] = val
				}
			default:
				if strings.HasPrefix(f, "-") {
					t.Fatalf("%s: this test does not know the docker option %s", run.where, f)
				}
				if f != name {
					t.Fatalf("%s: the image is %s, not %s", run.where, name, f)
				}
				run.args = fields[i+1:]
				i = len(fields)
			}
		}
		runs = append(runs, run)
	}
	if len(runs) == 0 {
		t.Fatal("docs/container.md's Docker section has no `docker run` command")
	}
	return runs, section
}

// quickstartRuns returns the services of the quickstart that run this image.
func quickstartRuns(t *testing.T) []containerRun {
	t.Helper()
	raw, err := os.ReadFile("../../dashboards/quickstart/docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Build       string            `yaml:"build"`
			Command     []string          `yaml:"command"`
			Ports       []string          `yaml:"ports"`
			Volumes     []string          `yaml:"volumes"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(raw, &compose); err != nil {
		t.Fatal(err)
	}
	var runs []containerRun
	for svc, s := range compose.Services {
		if s.Build != "../.." {
			continue
		}
		run := containerRun{where: "quickstart service " + svc, args: s.Command, env: s.Environment}
		for _, p := range s.Ports {
			run.ports = append(run.ports, p[strings.LastIndex(p, ":")+1:])
		}
		for _, v := range s.Volumes {
			run.volumes = append(run.volumes, strings.Split(v, ":")[1])
		}
		runs = append(runs, run)
	}
	if len(runs) == 0 {
		t.Fatal("the quickstart runs no service built from the Dockerfile")
	}
	return runs
}

// readmeSection returns the text of README's section "## title", up to the
// next section of the same level.
func readmeSection(t *testing.T, title string) string {
	t.Helper()
	return markdownSection(t, "../../README.md", title)
}

// markdownSection returns the text of file's section "## title", up to the
// next section of the same level.
func markdownSection(t *testing.T, file, title string) string {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(raw), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("%s has no section %q", file, title)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// parseWithEnv parses args as the exporter does, with exactly env as the
// LIVESWITCH_EXPORTER_* environment.
func parseWithEnv(t *testing.T, env map[string]string, args []string) (*cli, *kong.Context, error) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix+"_") {
			t.Setenv(k, "") // restored after the test
			os.Unsetenv(k)
		}
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	defer func() {
		for k := range env {
			os.Unsetenv(k)
		}
	}()
	var c cli
	parser, err := kong.New(&c, append(kongOptions(), kong.Exit(func(int) { t.Fatal("the command line asked to exit") }))...)
	if err != nil {
		t.Fatal(err)
	}
	kctx, err := parser.Parse(args)
	return &c, kctx, err
}

// TestDockerfileAgreesWithDocs holds the image to what docs/container.md's
// Docker section says of it: the fleet is stored in the volume it names, the user
// is not root and may write there, the exposed port is the exporter's, and
// every way docs/container.md and the quickstart run the image is a valid command line
// that stores the fleet where they expect it.
func TestDockerfileAgreesWithDocs(t *testing.T) {
	img := readImage(t, "../../Dockerfile")
	runs, section := docDockerRuns(t)
	m := regexp.MustCompile("(?i)the fleet is\\s+stored in `([^`]+)`").FindStringSubmatch(section)
	if m == nil {
		t.Fatal("docs/container.md's Docker section no longer says where the fleet is stored (\"the fleet is stored in `DIR`\")")
	}
	store := m[1]

	if !slices.Contains(img.volumes, store) {
		t.Errorf("docs/container.md stores the fleet in %s; the image's volumes are %v", store, img.volumes)
	}
	if user, _, _ := strings.Cut(img.user, ":"); user == "" || user == "root" || user == "0" {
		t.Errorf("docs/container.md says the image runs as a non-root user; USER is %q", img.user)
	}
	if owner := img.chowned[store]; owner != img.user {
		t.Errorf("the store %s is owned by %q, the exporter runs as %q: it could not write there", store, owner, img.user)
	}
	if len(img.entrypoint) != 1 || path.Base(img.entrypoint[0]) != name {
		t.Errorf("ENTRYPOINT %v: docs/container.md runs the image's arguments as the exporter's", img.entrypoint)
	}

	defaults, _, err := parseWithEnv(t, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, port, err := net.SplitHostPort(defaults.Serve.ListenAddress[0])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(img.exposed, []string{port}) {
		t.Errorf("the image exposes %v; the exporter listens on port %s", img.exposed, port)
	}

	for _, run := range append(runs, quickstartRuns(t)...) {
		env := map[string]string{}
		for k, v := range img.env {
			env[k] = v
		}
		for k, v := range run.env {
			env[k] = v
		}
		c, kctx, err := parseWithEnv(t, env, run.args)
		if err != nil {
			t.Errorf("%s: the exporter rejects it: %v", run.where, err)
			continue
		}
		if kctx.Command() == "simulate" {
			continue
		}
		for _, p := range run.ports {
			if p != port {
				t.Errorf("%s: publishes port %s, the exporter listens on %s", run.where, p, port)
			}
		}
		if c.Serve.RedisURL != "" || c.Serve.StorageInMemory {
			continue // docs/container.md: replicas need no volume
		}
		dir := c.Serve.StoragePath
		if !path.IsAbs(dir) {
			dir = path.Join(img.workdir, dir)
		}
		if dir != store {
			t.Errorf("%s: the fleet is stored in %s, docs/container.md says %s", run.where, dir, store)
		}
		if !slices.Contains(run.volumes, store) {
			t.Errorf("%s: mounts no volume on the store %s (volumes %v)", run.where, store, run.volumes)
		}
	}
}
