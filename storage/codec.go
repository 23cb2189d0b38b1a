package storage

import (
	"encoding/binary"
	"errors"
)

func encodeSeq(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func decodeSeq(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// encodeBatch serialises a batch for the log: the number of puts, each as
// key and value, then the number of deletes, each key; lengths as uvarints.
func encodeBatch(b *Batch) []byte {
	size := 2 * binary.MaxVarintLen64
	for k, v := range b.Puts {
		size += len(k) + len(v) + 2*binary.MaxVarintLen64
	}
	for _, k := range b.Deletes {
		size += len(k) + binary.MaxVarintLen64
	}
	out := make([]byte, 0, size)
	out = binary.AppendUvarint(out, uint64(len(b.Puts)))
	for k, v := range b.Puts {
		out = appendBytes(appendBytes(out, []byte(k)), v)
	}
	out = binary.AppendUvarint(out, uint64(len(b.Deletes)))
	for _, k := range b.Deletes {
		out = appendBytes(out, []byte(k))
	}
	return out
}

func appendBytes(out, b []byte) []byte {
	return append(binary.AppendUvarint(out, uint64(len(b))), b...)
}

var errCorrupt = errors.New("corrupt batch")

func decodeBatch(data []byte) (*Batch, error) {
	r := reader{data: data}
	n := r.uvarint()
	b := &Batch{Puts: make(map[string][]byte, min(n, 1<<16))}
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
