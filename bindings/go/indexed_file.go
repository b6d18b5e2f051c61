package tzstore

/*
#include <stdint.h>
#include <stdlib.h>
#include "tzstore.h"

// Defined in indexed_file_gc.c.
tzs_status tzs_go_indexed_file_gc(tzs_indexed_file *f, uintptr_t ctx, tzs_error **err);
*/
import "C"

import (
	"runtime"
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
}

// OpenIndexedFile opens (read-write: creates) the store in directory dir;
// keySize and headerSize are fixed for the store's life. Flags: ReadOnly,
// HeaderInValue, NoFsync. logSize is the index's log size (0 = default).
// Errors: ErrLocked, ErrNotFound (read-only open of a missing store),
// ErrInvalidArgument (sizes out of range or different from the store's),
// ErrCorrupted, ErrIO.
func OpenIndexedFile(dir string, keySize, headerSize uint32, flags Flags, logSize uint64) (*IndexedFile, error) {
	cdir, err := cPath(dir)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cdir))
	var p *C.tzs_indexed_file
	var e *C.tzs_error
	st := C.tzs_indexed_file_open(cdir, C.uint32_t(keySize), C.uint32_t(headerSize), C.uint32_t(flags),
		C.uint64_t(logSize), &p, &e)
	if err := check(st, e); err != nil {
		return nil, err
	}
	closeFn := func(p *C.tzs_indexed_file) { C.tzs_indexed_file_close(p) }
	return &IndexedFile{h: newHandle(p, "indexed file "+dir, closeFn), headerSize: int(headerSize)}, nil
}

// HeaderSize is the store's header size.
func (f *IndexedFile) HeaderSize() int { return f.headerSize }

// Mem reports whether key is stored. ErrInvalidArgument: a key of the
// wrong size.
func (f *IndexedFile) Mem(key []byte) (bool, error) {
	p, err := f.h.acquire()
	if err != nil {
		return false, err
	}
	defer f.h.done()
	k, kn := bytesArg(key)
	var e *C.tzs_error
	st := C.tzs_indexed_file_mem(p, k, kn, &e)
	runtime.KeepAlive(f)
	runtime.KeepAlive(key)
	if st == C.TZS_NOT_FOUND {
		return false, nil
	}
	return st == C.TZS_OK, check(st, e)
}

// Header returns the key's header, from the index alone, or ErrNotFound.
func (f *IndexedFile) Header(key []byte) ([]byte, error) {
	p, err := f.h.acquire()
	if err != nil {
		return nil, err
	}
	defer f.h.done()
	k, kn := bytesArg(key)
	header := make([]byte, f.headerSize)
	hp, hn := bytesArg(header)
	var e *C.tzs_error
	st := C.tzs_indexed_file_header(p, k, kn, hp, hn, &e)
	runtime.KeepAlive(f)
	runtime.KeepAlive(key)
	runtime.KeepAlive(header)
	if err := check(st, e); err != nil {
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
	p, err := f.h.acquire()
	if err != nil {
		return nil, nil, err
	}
	defer f.h.done()
	k, kn := bytesArg(key)
	var header []byte
	var hp *C.uint8_t
	var hn C.size_t
	if withHeader {
		header = make([]byte, f.headerSize)
		hp, hn = bytesArg(header)
		if hp == nil {
			hp = (*C.uint8_t)(unsafe.Pointer(&emptyBuffer[0]))
		}
	}
	var out C.tzs_bytes
	var e *C.tzs_error
	st := C.tzs_indexed_file_read(p, k, kn, &out, hp, hn, &e)
	runtime.KeepAlive(f)
	runtime.KeepAlive(key)
	runtime.KeepAlive(header)
	if err := check(st, e); err != nil {
		return nil, nil, err
	}
	return header, takeBytes(&out), nil
}

// emptyBuffer gives a non-NULL pointer for a zero-length header: the C API
// reads a NULL header as "no header".
var emptyBuffer [1]byte

// Append appends value for key with header (HeaderSize bytes), replacing
// an earlier value; with flush it is durable on return. Errors:
// ErrInvalidArgument (wrong sizes, or a HeaderInValue store), ErrReadOnly,
// ErrNoSpace, ErrIO.
func (f *IndexedFile) Append(key, header, value []byte, flush bool) error {
	hp, hn := bytesArg(header)
	if hp == nil {
		hp = (*C.uint8_t)(unsafe.Pointer(&emptyBuffer[0]))
	}
	return f.append(key, hp, hn, header, value, flush)
}

// AppendValue appends, to a HeaderInValue store, a value of at least
// HeaderSize bytes, which start with its header.
func (f *IndexedFile) AppendValue(key, value []byte, flush bool) error {
	return f.append(key, nil, 0, nil, value, flush)
}

func (f *IndexedFile) append(key []byte, hp *C.uint8_t, hn C.size_t, header, value []byte, flush bool) error {
	p, err := f.h.acquire()
	if err != nil {
		return err
	}
	defer f.h.done()
	k, kn := bytesArg(key)
	v, vn := bytesArg(value)
	var e *C.tzs_error
	st := C.tzs_indexed_file_append(p, k, kn, hp, hn, v, vn, C.bool(flush), &e)
	runtime.KeepAlive(f)
	runtime.KeepAlive(key)
	runtime.KeepAlive(header)
	runtime.KeepAlive(value)
	return check(st, e)
}

// Flush makes every append so far durable.
func (f *IndexedFile) Flush() error {
	p, err := f.h.acquire()
	if err != nil {
		return err
	}
	defer f.h.done()
	var e *C.tzs_error
	st := C.tzs_indexed_file_flush(p, &e)
	runtime.KeepAlive(f)
	return check(st, e)
}

// Sync loads, into a read-only handle, what the writer flushed since.
func (f *IndexedFile) Sync() error {
	p, err := f.h.acquire()
	if err != nil {
		return err
	}
	defer f.h.done()
	var e *C.tzs_error
	st := C.tzs_indexed_file_sync(p, &e)
	runtime.KeepAlive(f)
	return check(st, e)
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
	err := func() error {
		p, err := f.h.acquire()
		if err != nil {
			return err
		}
		defer f.h.done()
		var e *C.tzs_error
		st := C.tzs_go_indexed_file_gc(p, C.uintptr_t(ctx), &e)
		runtime.KeepAlive(f)
		return check(st, e)
	}()
	if state.panicked {
		if err == nil {
			_ = f.AwaitGC()
		}
		panic(state.panicVal)
	}
	return err
}

// AwaitGC waits for the running compaction, if any, and returns its error.
func (f *IndexedFile) AwaitGC() error {
	p, err := f.h.acquire()
	if err != nil {
		return err
	}
	defer f.h.done()
	var e *C.tzs_error
	st := C.tzs_indexed_file_await_gc(p, &e)
	runtime.KeepAlive(f)
	return check(st, e)
}

// Close releases the handle and its lock, after calls in progress and a
// running compaction end. Closing twice is a no-op; calls after Close
// return ErrClosed.
func (f *IndexedFile) Close() error {
	f.h.Close()
	return nil
}
