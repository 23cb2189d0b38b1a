package main

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/alecthomas/kong"
)

// flagRowRE is a row of the flag tables: | `--flag` | `default` | meaning |
var flagRowRE = regexp.MustCompile("^\\| `(--[^`]+)` \\| *(?:`([^`]*)`)? *\\|")

// flagsDoc is the flags reference, whose tables this file holds to kong's
// flags.
const flagsDoc = "../../docs/flags.md"

// readmeFlagTables returns the flags docs/flags.md's tables list, with their
// defaults: the first table (serve and the flags common to every command)
// and the one of its simulate section.
func readmeFlagTables(t *testing.T) (serve, simulate map[string]string) {
	t.Helper()
	raw, err := os.ReadFile(flagsDoc)
	if err != nil {
		t.Fatal(err)
	}
	serveText, simulateText, ok := strings.Cut(string(raw), "\n## `simulate`\n")
	if !ok {
		t.Fatal(flagsDoc + " has no ## `simulate` section")
	}
	parse := func(text, which string) map[string]string {
		rows := map[string]string{}
		for _, line := range strings.Split(text, "\n") {
			if !strings.HasPrefix(line, "| `--") {
				continue
			}
			m := flagRowRE.FindStringSubmatch(line)
			if m == nil {
				t.Errorf("docs/flags.md, %s flags: a row this test cannot read (| `--flag` | `default` | meaning |): %s", which, line)
				continue
			}
			if _, dup := rows[m[1]]; dup {
				t.Errorf("docs/flags.md, %s flags: %s is listed twice", which, m[1])
			}
			rows[m[1]] = m[2]
		}
		if len(rows) == 0 {
			t.Fatalf("docs/flags.md lists no %s flags", which)
		}
		return rows
	}
	return parse(serveText, "serve"), parse(simulateText, "simulate")
}

// modelFlags returns the flags kong builds from cli: those common to every
// command, and those of each command.
func modelFlags(t *testing.T) (global []*kong.Flag, commands map[string][]*kong.Flag) {
	t.Helper()
	parser, err := kong.New(&cli{}, kongOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	visible := func(flags []*kong.Flag) (out []*kong.Flag) {
		for _, f := range flags {
			if f.Name != "help" && !f.Hidden {
				out = append(out, f)
			}
		}
		return out
	}
	commands = map[string][]*kong.Flag{}
	for _, child := range parser.Model.Node.Children {
		commands[child.Name] = visible(child.Flags)
	}
	return visible(parser.Model.Node.Flags), commands
}

// flagValue parses `command args...` and returns the value of the flag
// named name: how the exporter understands a default.
func flagValue(t *testing.T, command, name string, args ...string) (any, error) {
	t.Helper()
	_, kctx, err := parseWithEnv(t, nil, append([]string{command}, args...))
	if err != nil {
		return nil, err
	}
	for _, node := range append([]*kong.Node{kctx.Model.Node}, kctx.Model.Node.Children...) {
		for _, f := range node.Flags {
			if f.Name == name {
				return f.Value.Target.Interface(), nil
			}
		}
	}
	return nil, fmt.Errorf("no flag --%s", name)
}

// TestReadmeListsEveryFlag holds docs/flags.md's tables to the command line:
// every flag of serve (and the common ones) is in the Flags table, every
// flag of simulate in its table, nothing is listed that does not exist, and
// each listed default is the one the exporter applies.
func TestReadmeListsEveryFlag(t *testing.T) {
	serveRows, simulateRows := readmeFlagTables(t)
	global, commands := modelFlags(t)
	if len(commands) != 2 || commands["serve"] == nil || commands["simulate"] == nil {
		t.Fatalf("commands %v: docs/flags.md documents serve and simulate; add a table for a new command", slices.Collect(maps.Keys(commands)))
	}
	for _, tc := range []struct {
		command string
		flags   []*kong.Flag
		rows    map[string]string
		where   string
	}{
		{"serve", append(slices.Clone(global), commands["serve"]...), serveRows, "docs/flags.md's serve table"},
		{"simulate", commands["simulate"], simulateRows, "docs/flags.md's simulate table"},
	} {
		listed := map[string]bool{}
		for _, f := range tc.flags {
			name := "--" + f.Name
			listed[name] = true
			readmeDefault, ok := tc.rows[name]
			switch {
			case !ok:
				t.Errorf("%s lacks %s (default `%s`): document it", tc.where, name, f.Default)
			case readmeDefault == "" && f.Default != "":
				t.Errorf("%s shows no default for %s; its default is `%s`", tc.where, name, f.Default)
			case readmeDefault != "":
				want, err := flagValue(t, tc.command, f.Name)
				if err != nil {
					t.Fatal(err)
				}
				got, err := flagValue(t, tc.command, f.Name, name+"="+readmeDefault)
				if err != nil {
					t.Errorf("%s says %s defaults to `%s`, which the exporter rejects: %v", tc.where, name, readmeDefault, err)
				} else if !reflect.DeepEqual(got, want) {
					t.Errorf("%s says %s defaults to `%s`, but its default is `%s`", tc.where, name, readmeDefault, f.Default)
				}
			}
		}
		for name := range tc.rows {
			if !listed[name] {
				t.Errorf("%s lists %s, which %s does not have", tc.where, name, tc.command)
			}
		}
	}
}

// TestEveryFlagHasItsVariable makes docs/flags.md's rule true: every flag but
// --version, of every command, is also set by LIVESWITCH_EXPORTER_<FLAG>,
// the flag's name upper-cased with . and - turned into _, and no two flags
// share a variable.
func TestEveryFlagHasItsVariable(t *testing.T) {
	global, commands := modelFlags(t)
	all := slices.Clone(global)
	for _, flags := range commands {
		all = append(all, flags...)
	}
	owner := map[string]string{}
	for _, f := range all {
		if f.Name == "version" {
			if len(f.Envs) != 0 {
				t.Errorf("--version is set by %v", f.Envs)
			}
			continue
		}
		want := envPrefix + "_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(f.Name))
		if !slices.Equal(f.Envs, []string{want}) {
			t.Errorf("--%s is set by %v; docs/flags.md's rule says %s", f.Name, f.Envs, want)
		}
		for _, env := range f.Envs {
			if other, dup := owner[env]; dup {
				t.Errorf("%s sets both --%s and --%s", env, other, f.Name)
			}
			owner[env] = f.Name
		}
	}
}
