package tzstore

// #include <stdlib.h>
// #include "tzstore.h"
import "C"

import (
	"runtime"
	"unsafe"
)

// Flags are open flags, combined with |.
type Flags uint32

const (
	// ReadOnly opens without writing or locking; see new values with Sync.
	ReadOnly Flags = C.TZS_READONLY
	// NoFsync skips every fsync: for tests and benchmarks only.
	NoFsync Flags = C.TZS_NO_FSYNC
	// Removable allows Index.Remove; it must match the index's creation.
	Removable Flags = C.TZS_REMOVABLE
)

// Singleton is one value stored in one file (tzs_singleton).
type Singleton struct {
	h *handle[C.tzs_singleton]
}

// OpenSingleton opens the singleton in the file path (created by the first
// write; its directory must exist). Errors: ErrLocked when another
// read-write instance is open, ErrNotFound when the directory is missing,
// ErrCorrupted, ErrIO, ErrInvalidArgument.
func OpenSingleton(path string, flags Flags) (*Singleton, error) {
	cpath, err := cPath(path)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cpath))
	var p *C.tzs_singleton
	var e *C.tzs_error
	if err := check(C.tzs_singleton_open(cpath, C.uint32_t(flags), &p, &e), e); err != nil {
		return nil, err
	}
	closeFn := func(p *C.tzs_singleton) { C.tzs_singleton_close(p) }
	return &Singleton{h: newHandle(p, "singleton "+path, closeFn)}, nil
}

// Read returns a copy of the value, or ErrNotFound when none is set.
func (s *Singleton) Read() ([]byte, error) {
	p, err := s.h.acquire()
	if err != nil {
		return nil, err
	}
	defer s.h.done()
	var out C.tzs_bytes
	var e *C.tzs_error
	st := C.tzs_singleton_read(p, &out, &e)
	runtime.KeepAlive(s)
	if err := check(st, e); err != nil {
		return nil, err
	}
	return takeBytes(&out), nil
}

// Write replaces the value (durable on return unless opened with NoFsync).
// Errors: ErrReadOnly, ErrNoSpace, ErrIO.
func (s *Singleton) Write(v []byte) error {
	p, err := s.h.acquire()
	if err != nil {
		return err
	}
	defer s.h.done()
	ptr, n := bytesArg(v)
	var e *C.tzs_error
	st := C.tzs_singleton_write(p, ptr, n, &e)
	runtime.KeepAlive(s)
	runtime.KeepAlive(v)
	return check(st, e)
}

// Delete removes the value; deleting an unset value succeeds.
func (s *Singleton) Delete() error {
	p, err := s.h.acquire()
	if err != nil {
		return err
	}
	defer s.h.done()
	var e *C.tzs_error
	st := C.tzs_singleton_delete(p, &e)
	runtime.KeepAlive(s)
	return check(st, e)
}

// Sync reloads the value from the file, for a read-only handle to see what
// the read-write instance wrote since.
func (s *Singleton) Sync() error {
	p, err := s.h.acquire()
	if err != nil {
		return err
	}
	defer s.h.done()
	var e *C.tzs_error
	st := C.tzs_singleton_sync(p, &e)
	runtime.KeepAlive(s)
	return check(st, e)
}

// Close releases the handle and its lock, after calls in progress return.
// Closing twice is a no-op; calls after Close return ErrClosed.
func (s *Singleton) Close() error {
	s.h.Close()
	return nil
}
