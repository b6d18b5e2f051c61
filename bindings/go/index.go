package tzstore

// #include "tzstore.h"
import "C"

import (
	"errors"
	"math"
)

// Index is a persistent hash table of fixed-size keys and values
// (tzs_index, as mirage's index): Add appends to a log that is merged into
// the sorted data file in the background. Keys and values must have
// exactly KeySize and ValueSize bytes (else ErrInvalidArgument).
type Index struct {
	h                  *handle[C.tzs_index]
	keySize, valueSize int
	gc                 gcFilters // the filters of background GCs (index_gc.go)
}

// OpenIndex opens the index in directory dir (created by a read-write
// open). Flags: ReadOnly, Removable, NoFsync. logSize is the number of
// entries buffered before a background merge (0 = the library's default).
// Errors: ErrLocked, ErrNotFound (read-only open of a missing index),
// ErrInvalidArgument (sizes out of range or different from the index's),
// ErrCorrupted, ErrIO.
func OpenIndex(dir string, keySize, valueSize int, flags Flags, logSize uint64) (*Index, error) {
	if keySize < 0 || valueSize < 0 || uint64(keySize) > math.MaxUint32 || uint64(valueSize) > math.MaxUint32 {
		return nil, &Error{Status: StatusInvalidArgument, Message: "index sizes out of range"}
	}
	h, err := openHandle(dir, "index", func(cdir *C.char, p **C.tzs_index, e cErrOut) cStatus {
		return C.tzs_index_open(cdir, C.uint32_t(keySize), C.uint32_t(valueSize), C.uint32_t(flags),
			C.uint64_t(logSize), p, e)
	}, func(p *C.tzs_index) { C.tzs_index_close(p) })
	if err != nil {
		return nil, err
	}
	return &Index{h: h, keySize: keySize, valueSize: valueSize}, nil
}

// KeySize is the size of every key in bytes.
func (x *Index) KeySize() int { return x.keySize }

// ValueSize is the size of every value in bytes.
func (x *Index) ValueSize() int { return x.valueSize }

// Mem reports whether key is bound.
func (x *Index) Mem(key []byte) (bool, error) {
	return callMem(x.h, func(p *C.tzs_index, e cErrOut) cStatus {
		kp, kn := bytesArg(key)
		return C.tzs_index_mem(p, kp, kn, e)
	})
}

// Find returns the value bound to key, or ErrNotFound.
func (x *Index) Find(key []byte) ([]byte, error) {
	value := make([]byte, x.valueSize)
	err := call(x.h, func(p *C.tzs_index, e cErrOut) cStatus {
		kp, kn := bytesArg(key)
		vp, vn := bytesArg(value)
		return C.tzs_index_find(p, kp, kn, vp, vn, e)
	})
	if err != nil {
		return nil, err
	}
	return value, nil
}

// Add binds key to value, replacing an earlier value. With flush, it is
// durable on return, with every earlier binding. Errors: ErrReadOnly,
// ErrInvalidArgument, ErrNoSpace, ErrIO, or a failed background merge's.
func (x *Index) Add(key, value []byte, flush bool) error {
	return call(x.h, func(p *C.tzs_index, e cErrOut) cStatus {
		kp, kn := bytesArg(key)
		vp, vn := bytesArg(value)
		return C.tzs_index_add(p, kp, kn, vp, vn, C.bool(flush), e)
	})
}

// Remove unbinds key (a no-op when unbound). Only for an index opened with
// Removable; otherwise ErrInvalidArgument.
func (x *Index) Remove(key []byte, flush bool) error {
	return call(x.h, func(p *C.tzs_index, e cErrOut) cStatus {
		kp, kn := bytesArg(key)
		return C.tzs_index_remove(p, kp, kn, C.bool(flush), e)
	})
}

// Flush makes every binding added so far durable.
func (x *Index) Flush() error {
	return call(x.h, func(p *C.tzs_index, e cErrOut) cStatus { return C.tzs_index_flush(p, e) })
}

// Sync loads, into a read-only handle, what the writer has flushed since.
func (x *Index) Sync() error {
	return call(x.h, func(p *C.tzs_index, e cErrOut) cStatus { return C.tzs_index_sync(p, e) })
}

// AwaitMerge waits for a running background merge and returns its error.
func (x *Index) AwaitMerge() error {
	return call(x.h, func(p *C.tzs_index, e cErrOut) cStatus { return C.tzs_index_await_merge(p, e) })
}

// Len returns the number of keys bound.
func (x *Index) Len() (uint64, error) {
	var n C.uint64_t
	err := x.h.use(func(p *C.tzs_index) error {
		n = C.tzs_index_len(p)
		return nil
	})
	return uint64(n), err
}

// ForEach calls fn for every binding of a snapshot taken when it starts
// (unspecified order, each key once). The slices are fn's to keep. An error
// returned by fn stops the iteration and is returned. fn may use the index,
// Close included.
func (x *Index) ForEach(fn func(key, value []byte) error) error {
	it, err := x.newIter()
	if err != nil {
		return err
	}
	defer C.tzs_index_iter_free(it)
	var key, value []byte
	return drain(func(e cErrOut) cStatus {
		key, value = make([]byte, x.keySize), make([]byte, x.valueSize)
		kp, kn := bytesArg(key)
		vp, vn := bytesArg(value)
		return C.tzs_index_iter_next(it, kp, kn, vp, vn, e)
	}, func() error { return fn(key, value) })
}

// newIter creates a snapshot iterator; it stays valid after the index is
// closed, so only its creation holds the handle.
func (x *Index) newIter() (*C.tzs_index_iter, error) {
	return callOut(x.h, func(p *C.tzs_index, it **C.tzs_index_iter, e cErrOut) cStatus {
		return C.tzs_index_iter_new(p, it, e)
	}, deref[*C.tzs_index_iter])
}

// Close waits for a running GC and returns its outcome as AwaitGC does
// (call CancelGC first to close at once), then waits for calls in progress
// and a running merge, makes the log durable and releases the lock.
// Closing twice is a no-op; calls after Close return ErrClosed. Close must
// not be called from inside a GC filter.
func (x *Index) Close() error {
	// Awaited before closing, so that the filter may still read the index
	// (calls made once Close has begun get ErrClosed).
	err := x.AwaitGC()
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	x.h.Close()
	// The C close waited for any GC started before it.
	x.gc.ended(math.MaxUint64)
	return err
}
