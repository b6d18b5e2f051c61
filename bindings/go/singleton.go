package tzstore

// #include "tzstore.h"
import "C"

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
	h, err := openHandle(path, "singleton", func(cpath *C.char, p **C.tzs_singleton, e cErrOut) cStatus {
		return C.tzs_singleton_open(cpath, C.uint32_t(flags), p, e)
	}, func(p *C.tzs_singleton) { C.tzs_singleton_close(p) })
	if err != nil {
		return nil, err
	}
	return &Singleton{h: h}, nil
}

// Read returns a copy of the value, or ErrNotFound when none is set.
func (s *Singleton) Read() ([]byte, error) {
	return callOut(s.h, func(p *C.tzs_singleton, out *C.tzs_bytes, e cErrOut) cStatus {
		return C.tzs_singleton_read(p, out, e)
	}, takeBytes)
}

// Write replaces the value (durable on return unless opened with NoFsync).
// Errors: ErrReadOnly, ErrNoSpace, ErrIO.
func (s *Singleton) Write(v []byte) error {
	return call(s.h, func(p *C.tzs_singleton, e cErrOut) cStatus {
		ptr, n := bytesArg(v)
		return C.tzs_singleton_write(p, ptr, n, e)
	})
}

// Delete removes the value; deleting an unset value succeeds.
func (s *Singleton) Delete() error {
	return call(s.h, func(p *C.tzs_singleton, e cErrOut) cStatus { return C.tzs_singleton_delete(p, e) })
}

// Sync reloads the value from the file, for a read-only handle to see what
// the read-write instance wrote since.
func (s *Singleton) Sync() error {
	return call(s.h, func(p *C.tzs_singleton, e cErrOut) cStatus { return C.tzs_singleton_sync(p, e) })
}

// Close releases the handle and its lock, after calls in progress return.
// Closing twice is a no-op; calls after Close return ErrClosed.
func (s *Singleton) Close() error {
	s.h.Close()
	return nil
}
