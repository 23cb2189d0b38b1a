package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// The reference decoder: how the exporter read events with encoding/json
// before it moved to jsontext. The fuzz targets below check that the fast
// path accepts, rejects and reads exactly what the reference does, apart
// from the one intended change (a top-level member given twice with the same
// case is rejected rather than last-wins).

type refInfo struct {
	ID                     *string    `json:"id"`
	Version                flexString `json:"version"`
	MachineName            string     `json:"machineName"`
	CoreCount              coreCount  `json:"coreCount"`
	OperatingSystem        string     `json:"operatingSystem"`
	OperatingSystemVersion string     `json:"operatingSystemVersion"`
	Architecture           string     `json:"architecture"`
	DeploymentID           string     `json:"deploymentId"`
	Region                 string     `json:"region"`
}

func refDecodeInfo(raw []byte) (Info, error) {
	var w *refInfo
	if err := json.Unmarshal(raw, &w); err != nil {
		return Info{}, err
	}
	if w == nil || w.ID == nil || *w.ID == "" {
		return Info{}, errMissingID
	}
	info := Info{
		ID: *w.ID, Version: string(w.Version), MachineName: w.MachineName, CoreCount: int(w.CoreCount),
		OperatingSystem: w.OperatingSystem, OperatingSystemVersion: w.OperatingSystemVersion,
		Architecture: w.Architecture, DeploymentID: w.DeploymentID, Region: w.Region,
	}
	return info, info.Validate()
}

var errMissingID = &InvalidError{Reason: "missing id"}

// refMembers reads the top-level members by lower-cased name.
func refMembers(raw []byte) (map[string]string, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, err
	}
	if members == nil {
		return nil, errMissingID
	}
	out := map[string]string{}
	for name, value := range members {
		lower := strings.ToLower(name)
		if _, dup := out[lower]; dup {
			return nil, errMissingID
		}
		out[lower] = string(value)
	}
	return out, nil
}

// usable keeps inputs both decoders see: the exporter rejects invalid UTF-8
// and deep nesting before decoding, and encoding/json turns an escaped lone
// surrogate into U+FFFD where jsontext refuses it (both are fine answers to
// a payload LiveSwitch never sends).
func usable(b []byte) bool {
	depth, _ := shape(b)
	return utf8.Valid(b) && depth <= maxDepth && !bytes.Contains(bytes.ToLower(b), []byte(`\ud`))
}

func FuzzDecodeInfoMatchesReference(f *testing.F) {
	for _, s := range []string{
		`{"id":"a","Version":1.2,"machineName":"m","coreCount":"8","deploymentId":"d","region":"r"}`,
		`{"ID":"a","id":"b","coreCount":null,"region":null}`, `{"id":"a\u00e9\n"}`, `null`, `[]`, `{"id":7}`,
		`{"id":"a","coreCount":-1}`, `{"id":"a","version":true}`, `{"id":"a","x":{"y":[1,{"z":null}]}}`, `{"id":"a"} x`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !usable(raw) {
			return
		}
		got, err := decodeInfo(raw)
		want, refErr := refDecodeInfo(raw)
		if (err == nil) != (refErr == nil) || (err == nil && !reflect.DeepEqual(got, want)) {
			t.Fatalf("%q: fast %+v, %v; reference %+v, %v", raw, got, err, want, refErr)
		}
	})
}

func FuzzEnvelopeMatchesReference(f *testing.F) {
	for _, s := range []string{
		`{"timestamp":1,"Type":"gateway.started","gateway":{"id":"g"}}`, `{"a":1,"A":2}`, `{"a":1,"a":2}`,
		`null`, `"x"`, `{"a":[1,2,{"b":"\u0041"}],"c":"d\"e"}`, `{"a":1}{`, `{"\u0041":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if !usable(raw) {
			return
		}
		env, err := splitEnvelope(raw)
		want, refErr := refMembers(raw)
		if err != nil && strings.Contains(err.Error(), "given twice") {
			return // the intended change: any repeated name is refused
		}
		if (err == nil) != (refErr == nil) {
			t.Fatalf("%q: fast %v; reference %v", raw, err, refErr)
		}
		if err != nil {
			return
		}
		got := map[string]string{}
		for _, m := range env.members {
			got[strings.ToLower(string(m.name))] = string(m.value)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: fast %v; reference %v", raw, got, want)
		}
	})
}

// shapeByteByByte is shape as first written, one byte at a time: the
// reference of the vectorised one.
func shapeByteByByte(b []byte) (depth, elements int) {
	level, inString, escaped, sawValue := 0, false, false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			level++
			depth = max(depth, level)
		case c == ']' || c == '}':
			level--
		case c == ',' && level == 1:
			elements++
		}
		if level >= 1 && c != ' ' && c != '\t' && c != '\r' && c != '\n' && !(level == 1 && (c == '[' || c == ',')) {
			sawValue = true
		}
	}
	if sawValue {
		elements++
	}
	return depth, elements
}

// FuzzShapeMatchesReference: the vectorised shape finds the depth and the
// element count the byte-by-byte walk finds, on any input.
func FuzzShapeMatchesReference(f *testing.F) {
	for _, seed := range []string{`[{"a":"b\"]"},{"c":[1,2]}]`, `{"x":"\\\\"}`, `["\\`, `[[[`, `[ , , ]`, `"unclosed`, string(realisticEvent)} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d, e := shape(b)
		rd, re := shapeByteByByte(b)
		if d != rd || e != re {
			t.Fatalf("shape(%q) = %d, %d; byte by byte %d, %d", b, d, e, rd, re)
		}
	})
}

// flexString, for the reference decoder, accepts a JSON string or number: the spec's samples show
// `"version": 0.0.0.0`, so some senders may emit a bare number.
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	switch {
	case string(b) == "null":
		*f = ""
	case len(b) > 0 && b[0] == '"':
		s, err := jsonString(b)
		if err != nil {
			return err
		}
		*f = flexString(s)
	case len(b) > 0 && (b[0] == '-' || (b[0] >= '0' && b[0] <= '9')):
		*f = flexString(b)
	default:
		return errors.New(`"version" must be a string or a number`)
	}
	return nil
}
