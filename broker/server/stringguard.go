package server

// Kafka's generated request readers refuse any string longer than 32,767 bytes ("string field
// X had invalid length"), in every API: only a flexible version's compact string can carry
// one (an int16 length cannot), and the broker closes the connection on the failed parse.
// kmsg reads such strings, so a request is checked after decoding. A string that long needs
// a body that long, so smaller bodies (nearly all) are not walked at all.

import (
	"errors"
	"reflect"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// maxStringBytes is the longest string Kafka reads (Short.MAX_VALUE).
const maxStringBytes = 0x7fff

// ErrStringLength is returned for a request carrying a string over maxStringBytes.
var ErrStringLength = errors.New("string field longer than 32767 bytes")

// checkStrings reports ErrStringLength if req (decoded from a body of bodyLen bytes) holds a
// string longer than Kafka accepts.
func checkStrings(req kmsg.Request, bodyLen int) error {
	if !req.IsFlexible() || bodyLen <= maxStringBytes {
		return nil
	}
	if overlong(reflect.ValueOf(req)) {
		return ErrStringLength
	}
	return nil
}

// overlong walks a decoded kmsg value: strings, pointers to strings, structs and slices of
// them ([]byte fields are opaque bytes, not strings, and are skipped).
func overlong(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.String:
		return v.Len() > maxStringBytes
	case reflect.Pointer, reflect.Interface:
		return !v.IsNil() && overlong(v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() && overlong(v.Field(i)) {
				return true
			}
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return false
		}
		for i := 0; i < v.Len(); i++ {
			if overlong(v.Index(i)) {
				return true
			}
		}
	}
	return false
}
