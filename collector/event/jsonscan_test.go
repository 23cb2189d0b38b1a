package event

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
)

// walk checks that raw holds exactly one valid JSON value.
func walk(raw []byte) error {
	end, err := walkValue(raw, skipSpace(raw, 0), 0)
	if err != nil {
		return err
	}
	return atEnd(raw, end)
}

// jsontextAccepts is jsontext's verdict with the exporter's settings:
// repeated names are the exporter's to find, and UTF-8 is checked over the
// whole input (lone surrogates in \u escapes pass, as they did).
func jsontextAccepts(raw []byte) bool {
	return utf8.Valid(raw) &&
		jsontext.Value(raw).IsValid(jsontext.AllowDuplicateNames(true), jsontext.AllowInvalidUTF8(true))
}

func TestWalk(t *testing.T) {
	deep := `{"a":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + "}"
	deepEnough := `{"a":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + "}"
	for _, tc := range []struct {
		raw  string
		want string // "" if valid, else a part of the reason
	}{
		{`{"a":[1,-0.5e+3,true,false,null,"\u00e9\n\/"],"b":{}}`, ""},
		{` [ ] `, ""},
		{`"é"`, ""},
		{`{"a":1,}`, "at start of an object member's name"},
		{`[1,]`, "at start of value"},
		{`{"a" 1}`, "after an object member's name"},
		{`{"a":1 "b":2}`, "after an object member's value"},
		{`[1 2]`, "after an array element"},
		{`01`, "after the top-level value"},
		{`1.`, "unexpected end"},
		{`1.x`, "after decimal point"},
		{`1e`, "unexpected end"},
		{`-`, "unexpected end"},
		{`-a`, "in number"},
		{`tru`, "unexpected end"},
		{`nul1`, "in literal null"},
		{`"a` + "\x01" + `"`, "control characters"},
		{`"\x"`, "in escape sequence"},
		{`"\u12g4"`, `in \u escape`},
		{"\"\xff\"", "invalid UTF-8"},
		{"\xff", "invalid character 0xff"},
		{`{"a":1}}`, "after the top-level value"},
		{``, "unexpected end"},
		{`"abc`, "unexpected end"},
		{deepEnough, ""},
		{deep, "nested deeper than 32 levels"},
	} {
		err := walk([]byte(tc.raw))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%.40q: %v, want valid", tc.raw, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%.40q: %v, want an error with %q", tc.raw, err, tc.want)
		case err != nil && strings.Contains(err.Error(), "\n"):
			t.Errorf("%.40q: the reason takes more than one line: %q", tc.raw, err)
		}
		if got, want := err == nil, jsontextAccepts([]byte(tc.raw)); got != want && tc.raw != deep {
			t.Errorf("%.40q: walker accepts %v, jsontext %v", tc.raw, got, want)
		}
	}
}

// FuzzWalkMatchesJSONText: the hand-written walker accepts exactly the
// inputs jsontext accepts, up to its nesting limit (maxDepth).
func FuzzWalkMatchesJSONText(f *testing.F) {
	for _, s := range []string{string(realisticEvent), `{"a":[1,{"b":null}],"c":"\ud800"}`, `-0.0e-0`, `[01]`,
		`{"a":"\"\\\/\b\f\n\r\t\u0041"}`, "\"\xed\xa0\x80\"", ` {} `, `[1,2`, `{"a":1}x`, `1e+`, `"\u00"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if depth, _ := shape(raw); depth > maxDepth {
			if err := walk(raw); err != nil && !errors.Is(err, errTooDeep) && jsontextAccepts(raw) {
				t.Fatalf("%q: walker %v; jsontext accepts it", raw, err)
			}
			return
		}
		err := walk(raw)
		if got, want := err == nil, jsontextAccepts(raw); got != want {
			t.Fatalf("%q: walker %v; jsontext accepts: %v", raw, err, want)
		}
	})
}

// BenchmarkWalk justifies the hand-written walker: checking and splitting
// a realistic event with it, against the same work with jsontext.
func BenchmarkWalk(b *testing.B) {
	raw := realisticEvent
	b.Run("walker", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		for b.Loop() {
			n := 0
			if err := eachMember(raw, func(_, _ []byte) error { n++; return nil }); err != nil || n == 0 {
				b.Fatal(err)
			}
		}
	})
	b.Run("jsontext", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(raw)))
		var dec jsontext.Decoder
		for b.Loop() {
			dec.Reset(strings.NewReader(string(raw)), jsontext.AllowDuplicateNames(true))
			if _, err := dec.ReadToken(); err != nil {
				b.Fatal(err)
			}
			n := 0
			for dec.PeekKind() != '}' {
				if _, err := dec.ReadValue(); err != nil { // the name
					b.Fatal(err)
				}
				if _, err := dec.ReadValue(); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if _, err := dec.ReadToken(); err != nil || n == 0 {
				b.Fatal(err)
			}
		}
	})
}
