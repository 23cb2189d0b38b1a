package embedded

import (
	"encoding/binary"
	"errors"

	"github.com/liveswitch-exporter/liveswitch_exporter/storage"
)

var errCorrupt = errors.New("corrupt batch")

// decodeBatch reads one batch of the earlier layout's log: the number of
// puts, each as key and value, then the number of deletes, each key;
// lengths as uvarints.
func decodeBatch(data []byte) (*storage.Batch, error) {
	r := reader{data: data}
	n := r.uvarint()
	b := &storage.Batch{Puts: make(map[string][]byte, min(n, 1<<16))}
	for i := uint64(0); i < n && r.err == nil; i++ {
		k := string(r.bytes())
		b.Puts[k] = append([]byte(nil), r.bytes()...)
	}
	n = r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		b.Deletes = append(b.Deletes, string(r.bytes()))
	}
	if r.err == nil && len(r.data) != 0 {
		r.err = errCorrupt
	}
	return b, r.err
}

type reader struct {
	data []byte
	err  error
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.data)
	if n <= 0 {
		r.err = errCorrupt
		return 0
	}
	r.data = r.data[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || n > uint64(len(r.data)) {
		r.err = errCorrupt
		return nil
	}
	b := r.data[:n]
	r.data = r.data[n:]
	return b
}
