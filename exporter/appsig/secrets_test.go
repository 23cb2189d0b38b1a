package appsig

import (
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, yaml string
		want       Secrets
		err        string
	}{
		{"plain", "app-1: s3cret\n\"app 2\": 'other:secret'\n", Secrets{"app-1": "s3cret", "app 2": "other:secret"}, ""},
		{"a number is taken as written", "app-1: 0x1F\napp-2: 00123\n", Secrets{"app-1": "0x1F", "app-2": "00123"}, ""},
		{"comments and a document marker", "---\n# production\napp-1: s3cret # rotated in May\n", Secrets{"app-1": "s3cret"}, ""},
		{"empty", "", nil, "holds no application secret"},
		{"an empty map", "{}\n", nil, "holds no application secret"},
		{"a list", "- app-1\n- s3cret\n", nil, "line 1: want a map"},
		{"a null secret", "app-1: s3cret\napp-2:\n", nil, `line 2: the secret of application "app-2" must be a non-empty string`},
		{"a map as secret", "app-1:\n  value: s3cret\n", nil, `line 2: the secret of application "app-1" must be a non-empty string`},
		{"a list as id", "[a, b]: s3cret\n", nil, "line 1: an application id must be"},
		{"an id given twice", "app-1: s3cret\napp-1: other\n", nil, `application "app-1" is given twice`},
		{"not YAML", "app-1: \"s3cret\n\tunterminated: [\n", nil, "not valid YAML (line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse([]byte(tc.yaml))
			switch {
			case tc.err == "" && err != nil:
				t.Fatal(err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("got %v, want an error containing %q", err, tc.err)
			case !reflect.DeepEqual(got, tc.want):
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), "unterminated")) {
				t.Fatalf("the error quotes the file: %v", err)
			}
		})
	}
}
