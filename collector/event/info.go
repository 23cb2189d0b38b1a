package event

import (
	"errors"
	"fmt"
	"unsafe"
)

// infoField is a member of a server object the exporter reads: names match
// without case (see equalFold) and other members are ignored; when a member
// is given twice, the last one counts.
type infoField struct {
	name  string // lower case
	label string // as documented, for reasons
	// at is the Info field a text member goes to; nil for coreCount.
	at func(*Info) *string
	// number allows a bare JSON number as the text (version).
	number bool
}

var infoFields = [...]infoField{
	{"id", "id", func(i *Info) *string { return &i.ID }, false},
	{"version", "version", func(i *Info) *string { return &i.Version }, true},
	{"machinename", "machineName", func(i *Info) *string { return &i.MachineName }, false},
	{"corecount", "coreCount", nil, false},
	{"operatingsystem", "operatingSystem", func(i *Info) *string { return &i.OperatingSystem }, false},
	{"operatingsystemversion", "operatingSystemVersion", func(i *Info) *string { return &i.OperatingSystemVersion }, false},
	{"architecture", "architecture", func(i *Info) *string { return &i.Architecture }, false},
	{"deploymentid", "deploymentId", func(i *Info) *string { return &i.DeploymentID }, false},
	{"region", "region", func(i *Info) *string { return &i.Region }, false},
}

// infoTexts holds the text of a server object's string members while it
// is read, as slices of the body, so that they become strings in one
// allocation of exactly their size: a server's record keeps them for as
// long as it lives.
type infoTexts struct {
	text [len(infoFields)][]byte
	size int
}

func (t *infoTexts) put(field int, text []byte) {
	t.size += len(text) - len(t.text[field])
	t.text[field] = text
}

// set fills info's string fields from the texts.
func (t *infoTexts) set(info *Info) {
	if t.size == 0 {
		return
	}
	buf := make([]byte, 0, t.size)
	for i, text := range t.text {
		if len(text) == 0 {
			continue
		}
		start := len(buf)
		buf = append(buf, text...)
		// buf is never written again where a string points.
		*infoFields[i].at(info) = unsafe.String(&buf[start], len(text))
	}
}

// decodeInfo reads a server object: the members the exporter knows, by
// name without case; other members are checked as JSON and passed over.
func decodeInfo(raw []byte) (Info, error) {
	var info Info
	var texts infoTexts
	err := eachMember(raw, func(name, value []byte) error {
		for i := range infoFields {
			if equalFold(name, infoFields[i].name) {
				return infoMember(&info, &texts, i, value)
			}
		}
		return nil
	})
	switch {
	case errors.Is(err, errNull):
		return Info{}, errors.New("is null, want an object")
	case err != nil:
		return Info{}, err
	case len(texts.text[0]) == 0:
		return Info{}, errors.New(`missing "id"`)
	}
	texts.set(&info)
	return info, info.Validate()
}

// infoMember reads the value of member infoFields[i].
func infoMember(info *Info, texts *infoTexts, i int, raw []byte) error {
	f := &infoFields[i]
	switch {
	case f.at == nil:
		var c coreCount
		if err := c.UnmarshalJSON(raw); err != nil {
			return err
		}
		info.CoreCount = int(c)
		return nil
	case string(raw) == "null":
		texts.put(i, nil)
		return nil
	case f.number && len(raw) > 0 && (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9')):
		texts.put(i, raw)
		return nil
	}
	text, err := unquote(raw)
	switch {
	case err == nil:
		texts.put(i, text)
		return nil
	case f.number:
		return fmt.Errorf("%q must be a string or a number", f.label)
	}
	return fmt.Errorf("%q has the wrong type (%s)", f.label, kindName(raw))
}
