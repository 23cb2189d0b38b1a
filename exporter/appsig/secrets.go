package appsig

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// Secrets maps an application id to its shared secret.
type Secrets map[string]string

// maxIDLen is the longest application id the exporter counts (a label
// value): a longer id in the file could never match.
const maxIDLen = 256

var yamlLine = regexp.MustCompile(`line (\d+)`)

// Parse reads a secrets file: a YAML map of applicationId: secret. Its
// errors name lines and application ids, never a secret nor any other
// content of the file.
func Parse(raw []byte) (Secrets, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		where := ""
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			where = " (line " + m[1] + ")"
		}
		return nil, errors.New("not valid YAML" + where)
	}
	if len(doc.Content) == 0 {
		return nil, errors.New("holds no application secret")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: want a map of applicationId: secret", root.Line)
	}
	secrets := make(Secrets, len(root.Content)/2)
	for i := 0; i+1 < len(root.Content); i += 2 {
		if err := secrets.add(root.Content[i], root.Content[i+1]); err != nil {
			return nil, err
		}
	}
	if len(secrets) == 0 {
		return nil, errors.New("holds no application secret")
	}
	return secrets, nil
}

// add takes one entry of the map, checked.
func (s Secrets) add(key, value *yaml.Node) error {
	id := key.Value
	switch {
	case key.Kind != yaml.ScalarNode || id == "" || len(id) > maxIDLen || strings.ContainsFunc(id, unicode.IsControl):
		return fmt.Errorf("line %d: an application id must be a non-empty string of at most %d bytes without control characters", key.Line, maxIDLen)
	case value.Kind != yaml.ScalarNode || value.Tag == "!!null" || value.Value == "":
		return fmt.Errorf("line %d: the secret of application %s must be a non-empty string", value.Line, quote(id))
	}
	if _, dup := s[id]; dup {
		return fmt.Errorf("line %d: application %s is given twice", key.Line, quote(id))
	}
	s[id] = value.Value
	return nil
}
