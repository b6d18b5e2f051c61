package tzstore

// #include <stdlib.h>
// #include "tzstore.h"
import "C"

import "unsafe"

// The one path from a Go method to a C function: every wrapper hands a
// closure over its C call to one of these helpers, which hold the handle for
// the call (a closed handle gives ErrClosed without calling C), keep it
// alive until C returns (handle.use), and turn the status and error object
// into a Go error.

// cStatus and cErrOut name a C call's result and its error slot (tzs_status,
// tzs_error **), so that the closures read short and tests, which cannot
// import "C", can write closures too.
type (
	cStatus = C.tzs_status
	cErrOut = **C.tzs_error
)

// call runs a C call that reports through a status and an error slot.
func call[T any](h *handle[T], f func(p *T, e cErrOut) cStatus) error {
	return h.use(func(p *T) error {
		var e *C.tzs_error
		st := f(p, &e)
		return check(st, e)
	})
}

// callOut runs a C call that fills *out on success and converts it with
// conv (which also frees what the library allocated); on error the result
// is R's zero value.
func callOut[T, O, R any](h *handle[T], f func(p *T, out *O, e cErrOut) cStatus, conv func(*O) R) (R, error) {
	var out O
	if err := call(h, func(p *T, e cErrOut) cStatus { return f(p, &out, e) }); err != nil {
		var zero R
		return zero, err
	}
	return conv(&out), nil
}

// callMem runs a membership test: TZS_NOT_FOUND is false without error.
func callMem[T any](h *handle[T], f func(p *T, e cErrOut) cStatus) (bool, error) {
	found := false
	err := h.use(func(p *T) error {
		var e *C.tzs_error
		st := f(p, &e)
		if st == C.TZS_NOT_FOUND {
			return nil
		}
		found = st == C.TZS_OK
		return check(st, e)
	})
	return found, err
}

// openHandle opens the C handle of the store at path (the store's open
// call, given the C copy of path) and wraps it; what names the store in
// messages about the closed handle, followed by path.
func openHandle[T any](path, what string, open func(cpath *C.char, p **T, e cErrOut) cStatus,
	closeFn func(*T)) (*handle[T], error) {
	cpath, err := cPath(path)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cpath))
	var p *T
	var e *C.tzs_error
	if err := check(open(cpath, &p, &e), e); err != nil {
		return nil, err
	}
	return newHandle(p, what+" "+path, closeFn), nil
}

// hashArg is the C view of a hash for the duration of one call.
func hashArg(h *Hash) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(&h[0])) }

// deref is callOut's conversion for an output kept as it is (a C handle).
func deref[O any](out *O) O { return *out }

// drain runs a C iterator to its end: next fills the next item (TZS_DONE
// when there is none left), then each takes it; the first error of either
// stops the iteration.
func drain(next func(e cErrOut) cStatus, each func() error) error {
	for {
		var e *C.tzs_error
		st := next(&e)
		if st == C.TZS_DONE {
			return nil
		}
		if err := check(st, e); err != nil {
			return err
		}
		if err := each(); err != nil {
			return err
		}
	}
}
