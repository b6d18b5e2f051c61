package tzstore

/*
#include <stdint.h>
#include "tzstore.h"

// Defined in indexed_file_gc.c.
tzs_status tzs_go_indexed_file_gc(tzs_indexed_file *f, uintptr_t ctx, tzs_error **err);
*/
import "C"

import (
	"errors"
	"math"
	"runtime/cgo"
	"unsafe"
)

// HeaderInValue is an OpenIndexedFile flag: the header is the first
// headerSize bytes of each value (the SIMPLE_INDEXED_FILE variant; append
// with AppendValue).
const HeaderInValue Flags = C.TZS_HEADER_IN_VALUE

// IndexedFile is an indexed file (tzs_indexed_file): values appended to
// one file, found through an index mapping each fixed-size key to the
// value's offset and a fixed-size header.
type IndexedFile struct {
	h          *handle[C.tzs_indexed_file]
	headerSize int
	gc         gcFilters // the filters of background GCs (indexed_file_gc.go)
}

// OpenIndexedFile opens (read-write: creates) the store in directory dir;
// keySize and headerSize are fixed for the store's life. Flags: ReadOnly,
// HeaderInValue, NoFsync. logSize is the index's log size (0 = default).
// Errors: ErrLocked, ErrNotFound (read-only open of a missing store),
// ErrInvalidArgument (sizes out of range or different from the store's),
// ErrCorrupted, ErrIO.
func OpenIndexedFile(dir string, keySize, headerSize uint32, flags Flags, logSize uint64) (*IndexedFile, error) {
	h, err := openHandle(dir, "indexed file", func(cdir *C.char, p **C.tzs_indexed_file, e cErrOut) cStatus {
		return C.tzs_indexed_file_open(cdir, C.uint32_t(keySize), C.uint32_t(headerSize), C.uint32_t(flags),
			C.uint64_t(logSize), p, e)
	}, func(p *C.tzs_indexed_file) { C.tzs_indexed_file_close(p) })
	if err != nil {
		return nil, err
	}
	return &IndexedFile{h: h, headerSize: int(headerSize)}, nil
}

// HeaderSize is the store's header size.
func (f *IndexedFile) HeaderSize() int { return f.headerSize }

// Mem reports whether key is stored. ErrInvalidArgument: a key of the
// wrong size.
func (f *IndexedFile) Mem(key []byte) (bool, error) {
	return callMem(f.h, func(p *C.tzs_indexed_file, e cErrOut) cStatus {
		k, kn := bytesArg(key)
		return C.tzs_indexed_file_mem(p, k, kn, e)
	})
}

// Header returns the key's header, from the index alone, or ErrNotFound.
func (f *IndexedFile) Header(key []byte) ([]byte, error) {
	header := make([]byte, f.headerSize)
	err := call(f.h, func(p *C.tzs_indexed_file, e cErrOut) cStatus {
		k, kn := bytesArg(key)
		hp, hn := bytesArg(header)
		return C.tzs_indexed_file_header(p, k, kn, hp, hn, e)
	})
	if err != nil {
		return nil, err
	}
	return header, nil
}

// Read returns the key's value, or ErrNotFound. ErrCorrupted: the value
// fails its checksum.
func (f *IndexedFile) Read(key []byte) ([]byte, error) {
	_, v, err := f.read(key, false)
	return v, err
}

// ReadWithHeader returns the key's header and value, or ErrNotFound.
func (f *IndexedFile) ReadWithHeader(key []byte) (header, value []byte, err error) {
	return f.read(key, true)
}

func (f *IndexedFile) read(key []byte, withHeader bool) ([]byte, []byte, error) {
	var header []byte
	if withHeader {
		header = make([]byte, f.headerSize)
	}
	value, err := callOut(f.h, func(p *C.tzs_indexed_file, out *C.tzs_bytes, e cErrOut) cStatus {
		k, kn := bytesArg(key)
		var hp *C.uint8_t
		var hn C.size_t
		if withHeader {
			hp, hn = headerArg(header)
		}
		return C.tzs_indexed_file_read(p, k, kn, out, hp, hn, e)
	}, takeBytes)
	if err != nil {
		return nil, nil, err
	}
	return header, value, nil
}

// headerArg is bytesArg for a header buffer: never NULL, because the C API
// reads a NULL header as "no header".
func headerArg(header []byte) (*C.uint8_t, C.size_t) {
	if len(header) == 0 {
		return (*C.uint8_t)(unsafe.Pointer(&emptyBuffer[0])), 0
	}
	return bytesArg(header)
}

// emptyBuffer is headerArg's non-NULL pointer for an empty header.
var emptyBuffer [1]byte

// Append appends value for key with header (HeaderSize bytes), replacing
// an earlier value; with flush it is durable on return. Errors:
// ErrInvalidArgument (wrong sizes, or a HeaderInValue store), ErrReadOnly,
// ErrNoSpace, ErrIO.
func (f *IndexedFile) Append(key, header, value []byte, flush bool) error {
	return f.append(key, header, true, value, flush)
}

// AppendValue appends, to a HeaderInValue store, a value of at least
// HeaderSize bytes, which start with its header.
func (f *IndexedFile) AppendValue(key, value []byte, flush bool) error {
	return f.append(key, nil, false, value, flush)
}

func (f *IndexedFile) append(key, header []byte, hasHeader bool, value []byte, flush bool) error {
	return call(f.h, func(p *C.tzs_indexed_file, e cErrOut) cStatus {
		k, kn := bytesArg(key)
		var hp *C.uint8_t
		var hn C.size_t
		if hasHeader {
			hp, hn = headerArg(header)
		}
		v, vn := bytesArg(value)
		return C.tzs_indexed_file_append(p, k, kn, hp, hn, v, vn, C.bool(flush), e)
	})
}

// Flush makes every append so far durable.
func (f *IndexedFile) Flush() error {
	return call(f.h, func(p *C.tzs_indexed_file, e cErrOut) cStatus { return C.tzs_indexed_file_flush(p, e) })
}

// Sync loads, into a read-only handle, what the writer flushed since.
func (f *IndexedFile) Sync() error {
	return call(f.h, func(p *C.tzs_indexed_file, e cErrOut) cStatus { return C.tzs_indexed_file_sync(p, e) })
}

// gcState is what the C callback reaches through its cgo.Handle.
type gcState struct {
	keep     func(key []byte) bool
	panicked bool
	panicVal interface{}
}

//export goIndexedFileKeep
func goIndexedFileKeep(key *C.uint8_t, n C.size_t, ctx C.uintptr_t) (kept C.bool) {
	s := cgo.Handle(ctx).Value().(*gcState)
	if s.panicked {
		return true
	}
	defer func() {
		if r := recover(); r != nil {
			s.panicked, s.panicVal = true, r
			kept = true
		}
	}()
	k := C.GoBytes(unsafe.Pointer(key), C.int(n))
	return C.bool(s.keep(k))
}

// GC starts a compaction keeping the keys for which keep returns true.
// keep runs on this goroutine, once per stored key (a copy it may keep),
// before GC returns; it must not Close the store. The kept values are then
// copied in the background while appends continue (values appended
// meanwhile are kept); wait with AwaitGC. If keep panics, the remaining
// keys are kept, the compaction is awaited and the panic re-raised.
// Errors: ErrInvalidArgument (a compaction is running), ErrReadOnly, ErrIO,
// or the previous compaction's error.
func (f *IndexedFile) GC(keep func(key []byte) bool) error {
	state := &gcState{keep: keep}
	ctx := cgo.NewHandle(state)
	defer ctx.Delete()
	err := call(f.h, func(p *C.tzs_indexed_file, e cErrOut) cStatus {
		return C.tzs_go_indexed_file_gc(p, C.uintptr_t(ctx), e)
	})
	if state.panicked {
		if err == nil {
			_ = f.AwaitGC()
		}
		panic(state.panicVal)
	}
	return err
}

// AwaitGC waits for the running compaction (from GC or GCFilter; Octez's
// wait_gc_completion), if any, and returns its outcome once: nil (also
// for a cancelled one), its error (ErrIO, ErrNoSpace, ErrCorrupted,
// ErrPanic; the store then keeps its old generation), or a
// *FilterPanicError if a GCFilter's filter panicked. ErrInvalidArgument
// from inside a GCFilter's filter.
func (f *IndexedFile) AwaitGC() error {
	var err error
	f.gc.observe(func() bool {
		err = call(f.h, func(p *C.tzs_indexed_file, e cErrOut) cStatus { return C.tzs_indexed_file_await_gc(p, e) })
		return gcEnded(err)
	})
	if err != nil {
		return err
	}
	return f.gc.takePanic()
}

// Close waits for a running compaction and returns its outcome as AwaitGC
// does (call CancelGC first to close at once), then releases the handle
// and its lock after calls in progress. Closing twice is a no-op; calls
// after Close return ErrClosed. Close must not be called from inside a GC
// filter.
func (f *IndexedFile) Close() error {
	// Awaited before closing, so that a filter may still read the store
	// (calls made once Close has begun get ErrClosed).
	err := f.AwaitGC()
	if errors.Is(err, ErrClosed) {
		err = nil
	}
	f.h.Close()
	// The C close waited for any GC started before it.
	f.gc.ended(math.MaxUint64)
	return err
}
