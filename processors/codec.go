package processors

import (
	"cmp"
	"encoding/binary"
	"errors"
	"math"
	"slices"
)

// A processor's state may implement encoding.BinaryAppender and
// encoding.BinaryUnmarshaler: the pipeline then stores it in that compact
// form inside the user's binary document; a state that does not is stored
// as JSON there, so a new processor works without a codec. The helpers
// below are the vocabulary of such codecs: varints for integers and times,
// fixed 8 bytes for floats, length-prefixed strings.

// ErrShortState matches every error of a Reader that ran past the end of
// the data or met a malformed value.
var ErrShortState = errors.New("binary state truncated or malformed")

// AppendVarint appends v as a signed varint.
func AppendVarint(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// AppendUvarint appends v as an unsigned varint.
func AppendUvarint(b []byte, v uint64) []byte { return binary.AppendUvarint(b, v) }

// AppendFloat appends v in 8 bytes, exactly.
func AppendFloat(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

// AppendString appends s with its length.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBool appends v as one byte.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendVarints appends a length-prefixed list of signed varints.
func AppendVarints[T ~int | ~int64](b []byte, vs []T) []byte {
	b = binary.AppendUvarint(b, uint64(len(vs)))
	for _, v := range vs {
		b = binary.AppendVarint(b, int64(v))
	}
	return b
}

// Reader reads what the Append functions wrote. The first error sticks:
// every later read returns a zero value, and Err reports it, so a codec
// reads all its fields and checks once.
type Reader struct {
	b   []byte
	err error
}

// NewReader reads b.
func NewReader(b []byte) *Reader { return &Reader{b: b} }

// Err is the first error met (it matches ErrShortState), or nil.
func (r *Reader) Err() error { return r.err }

// Len is how many bytes are left.
func (r *Reader) Len() int { return len(r.b) }

func (r *Reader) fail() {
	if r.err == nil {
		r.err = ErrShortState
	}
	r.b = nil
}

// Varint reads a signed varint.
func (r *Reader) Varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Int reads a signed varint that must fit an int.
func (r *Reader) Int() int {
	v := r.Varint()
	if int64(int(v)) != v {
		r.fail()
		return 0
	}
	return int(v)
}

// Count reads a length that must not exceed the bytes left divided by
// min, the least bytes one element takes: a corrupt length cannot make
// the decoder allocate more than the data could hold.
func (r *Reader) Count(min int) int {
	n := r.Uvarint()
	if n > uint64(len(r.b)/max(min, 1)) {
		r.fail()
		return 0
	}
	return int(n)
}

// Float reads 8 bytes.
func (r *Reader) Float() float64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}

// Bool reads one byte, 0 or 1.
func (r *Reader) Bool() bool {
	if len(r.b) < 1 || r.b[0] > 1 {
		r.fail()
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// Byte reads one byte.
func (r *Reader) Byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// String reads a length-prefixed string.
func (r *Reader) String() string {
	n := r.Count(1)
	if r.err != nil {
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

// Varints reads a length-prefixed list of signed varints (nil when empty).
func (r *Reader) Varints() []int64 { return readVarints[int64](r) }

// Ints reads what AppendVarints wrote of ints (nil when empty).
func (r *Reader) Ints() []int { return readVarints[int](r) }

func readVarints[T ~int | ~int64](r *Reader) []T {
	n := r.Count(1)
	if n == 0 {
		return nil
	}
	vs := make([]T, n)
	for i := range vs {
		vs[i] = T(r.Varint())
	}
	if r.err != nil {
		return nil
	}
	return vs
}

// Done fails unless every byte was read: trailing bytes mean the data was
// written by another layout.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) > 0 {
		r.err = ErrShortState
	}
	return r.err
}

// AppendFixed64 appends v in 8 bytes.
func AppendFixed64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

// Fixed64 reads 8 bytes.
func (r *Reader) Fixed64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.LittleEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

// Bytes reads a length-prefixed byte string; the result aliases the data.
func (r *Reader) Bytes() []byte {
	n := r.Count(1)
	if r.err != nil {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// Bytes32 reads a byte string prefixed by a 4-byte little-endian length;
// the result aliases the data.
func (r *Reader) Bytes32() []byte {
	if len(r.b) < 4 {
		r.fail()
		return nil
	}
	n := binary.LittleEndian.Uint32(r.b)
	if uint64(n) > uint64(len(r.b)-4) {
		r.fail()
		return nil
	}
	v := r.b[4 : 4+n : 4+n]
	r.b = r.b[4+n:]
	return v
}

// AppendMap appends m's length and its entries in key order, so equal maps
// are equal bytes.
func AppendMap[K cmp.Ordered, V any](b []byte, m map[K]V, key func([]byte, K) []byte, val func([]byte, V) []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	var small [8]K // most maps are small: sort their keys without allocating
	keys := small[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b = val(key(b, k), m[k])
	}
	return b
}

// ReadMap reads what AppendMap wrote (nil when empty). minEntry is the
// least bytes an entry takes, which bounds a corrupt length.
func ReadMap[K comparable, V any](r *Reader, minEntry int, key func(*Reader) K, val func(*Reader) V) map[K]V {
	n := r.Count(minEntry)
	if n == 0 {
		return nil
	}
	m := make(map[K]V, n)
	for range n {
		k := key(r)
		m[k] = val(r)
		if r.err != nil {
			return nil
		}
	}
	return m
}
