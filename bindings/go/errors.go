package tzstore

// #include <stdlib.h>
// #include "tzstore.h"
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Status is a tzs_status: the outcome of a C call.
type Status uint32

// Status values (stable numbers, mirrored from tzstore.h).
const (
	StatusOK                 Status = C.TZS_OK
	StatusNotFound           Status = C.TZS_NOT_FOUND
	StatusDone               Status = C.TZS_DONE
	StatusInvalidArgument    Status = C.TZS_INVALID_ARGUMENT
	StatusIO                 Status = C.TZS_IO
	StatusCorrupted          Status = C.TZS_CORRUPTED
	StatusReadOnly           Status = C.TZS_READ_ONLY
	StatusLocked             Status = C.TZS_LOCKED
	StatusConflict           Status = C.TZS_CONFLICT
	StatusTooManyRetries     Status = C.TZS_TOO_MANY_RETRIES
	StatusValueExpected      Status = C.TZS_VALUE_EXPECTED
	StatusDictionaryExpected Status = C.TZS_DICTIONARY_EXPECTED
	StatusKeyExists          Status = C.TZS_KEY_EXISTS
	StatusNoSpace            Status = C.TZS_NO_SPACE
	StatusInconsistent       Status = C.TZS_INCONSISTENT
	StatusClosed             Status = C.TZS_CLOSED
	StatusPanic              Status = C.TZS_PANIC
)

// String is the C name of the status, e.g. "TZS_READ_ONLY".
func (s Status) String() string {
	return C.GoString(C.tzs_status_name(C.tzs_status(s)))
}

// Error is a failed call: its status and the library's message, which names
// the path or key concerned. errors.Is(err, ErrX) matches on the status.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Status.String()
	}
	// The one error text of every front end: the C status name, then the
	// message.
	return e.Status.String() + ": " + e.Message
}

// Is reports whether target is the sentinel of e's status.
func (e *Error) Is(target error) bool {
	s, ok := sentinels[e.Status]
	return ok && target == s
}

// Sentinel errors, one per failure status, for errors.Is. Absence
// (ErrNotFound) is returned as the sentinel itself.
var (
	ErrNotFound           = &Error{Status: StatusNotFound}
	ErrDone               = &Error{Status: StatusDone}
	ErrInvalidArgument    = &Error{Status: StatusInvalidArgument}
	ErrIO                 = &Error{Status: StatusIO}
	ErrCorrupted          = &Error{Status: StatusCorrupted}
	ErrReadOnly           = &Error{Status: StatusReadOnly}
	ErrLocked             = &Error{Status: StatusLocked}
	ErrConflict           = &Error{Status: StatusConflict}
	ErrTooManyRetries     = &Error{Status: StatusTooManyRetries}
	ErrValueExpected      = &Error{Status: StatusValueExpected}
	ErrDictionaryExpected = &Error{Status: StatusDictionaryExpected}
	ErrKeyExists          = &Error{Status: StatusKeyExists}
	ErrNoSpace            = &Error{Status: StatusNoSpace}
	ErrInconsistent       = &Error{Status: StatusInconsistent}
	ErrClosed             = &Error{Status: StatusClosed}
	ErrPanic              = &Error{Status: StatusPanic}
)

var sentinels = map[Status]*Error{}

func init() {
	for _, e := range []*Error{
		ErrNotFound, ErrDone, ErrInvalidArgument, ErrIO, ErrCorrupted,
		ErrReadOnly, ErrLocked, ErrConflict, ErrTooManyRetries,
		ErrValueExpected, ErrDictionaryExpected, ErrKeyExists, ErrNoSpace,
		ErrInconsistent, ErrClosed, ErrPanic,
	} {
		sentinels[e.Status] = e
	}
}

// check turns a status and its error object into a Go error, freeing the
// object. NOT_FOUND and DONE carry no object and return their sentinel.
func check(st C.tzs_status, e *C.tzs_error) error {
	if st == C.TZS_OK {
		return nil
	}
	if e == nil {
		if s, ok := sentinels[Status(st)]; ok {
			return s
		}
		return &Error{Status: Status(st)}
	}
	defer C.tzs_error_free(e)
	return &Error{Status: Status(st), Message: C.GoString(C.tzs_error_message(e))}
}

// closedError reports a call on a closed handle.
func closedError(what string) error {
	return &Error{Status: StatusClosed, Message: fmt.Sprintf("%s is closed", what)}
}

// takeBytes copies a library-allocated buffer into Go memory and frees it.
func takeBytes(b *C.tzs_bytes) []byte {
	defer C.tzs_bytes_free(b)
	return copyBytes(b)
}

// copyBytes copies a library buffer into a non-nil Go slice, without
// freeing it.
func copyBytes(b *C.tzs_bytes) []byte {
	out := make([]byte, int(b.len))
	if b.len > 0 {
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(b.ptr)), int(b.len)))
	}
	return out
}

// cPath copies a path into C memory (free it with C.free); a NUL byte,
// which C would silently truncate at, is ErrInvalidArgument.
func cPath(path string) (*C.char, error) {
	if strings.IndexByte(path, 0) >= 0 {
		return nil, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("path %q contains a NUL byte", path)}
	}
	return C.CString(path), nil
}

// bytesArg is the C view of an input slice for the duration of one call
// (NULL for an empty slice, which the library accepts with length 0).
func bytesArg(b []byte) (*C.uint8_t, C.size_t) {
	if len(b) == 0 {
		return nil, 0
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0])), C.size_t(len(b))
}

// Version is the library version, e.g. "0.1.0".
func Version() string { return C.GoString(C.tzs_version()) }
