package tzstore

/*
#include <stdlib.h>
#include <string.h>
#include "tzstore.h"

// Builds the tzs_block on the C stack, so that Go passes its buffers as
// plain arguments (cgo forbids passing Go memory that holds Go pointers).
static tzs_status tzs_go_floating_append(tzs_floating *f, const uint8_t *hash, int32_t level,
    const uint8_t *pred, uint8_t *contents, size_t contents_len, bool has_metadata,
    uint8_t *metadata, size_t metadata_len, const uint8_t *preds, size_t n_preds, bool flush,
    tzs_error **err) {
  tzs_block b;
  memset(&b, 0, sizeof b);
  memcpy(b.hash, hash, 32);
  b.level = level;
  memcpy(b.predecessor, pred, 32);
  b.contents.ptr = contents;
  b.contents.len = contents_len;
  b.has_metadata = has_metadata;
  b.metadata.ptr = metadata;
  b.metadata.len = metadata_len;
  return tzs_floating_append(f, &b, preds, n_preds, flush, err);
}
*/
import "C"

import (
	"runtime"
	"unsafe"
)

// Hash is a block hash (32 bytes).
type Hash [32]byte

// Block is a block (tzs_block). Metadata is nil for a block without
// metadata; a non-nil empty slice is empty metadata.
type Block struct {
	Hash        Hash
	Level       int32
	Predecessor Hash
	Contents    []byte
	Metadata    []byte
}

// FloatingKind selects one of the five floating stores of a directory.
type FloatingKind uint32

// The floating store kinds (TZS_FLOATING_*).
const (
	FloatingRO      FloatingKind = C.TZS_FLOATING_RO
	FloatingRW      FloatingKind = C.TZS_FLOATING_RW
	FloatingROTmp   FloatingKind = C.TZS_FLOATING_RO_TMP
	FloatingRWTmp   FloatingKind = C.TZS_FLOATING_RW_TMP
	FloatingRestore FloatingKind = C.TZS_FLOATING_RESTORE
)

// Floating is a floating block store (tzs_floating): blocks appended in
// arrival order with their predecessor lists, looked up by hash. Many
// goroutines may read while one appends.
type Floating struct {
	h *handle[C.tzs_floating]
}

// OpenFloating opens the store of kind in directory dir (created, and
// repaired after a crash, by a read-write open). Flags: ReadOnly, NoFsync.
// Errors: ErrLocked (another read-write instance of this kind), ErrNotFound
// (read-only open of a missing store), ErrCorrupted, ErrIO,
// ErrInvalidArgument.
func OpenFloating(dir string, kind FloatingKind, flags Flags) (*Floating, error) {
	cdir, err := cPath(dir)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cdir))
	var p *C.tzs_floating
	var e *C.tzs_error
	st := C.tzs_floating_open(cdir, C.tzs_floating_kind(kind), C.uint32_t(flags), &p, &e)
	if err := check(st, e); err != nil {
		return nil, err
	}
	closeFn := func(p *C.tzs_floating) { C.tzs_floating_close(p) }
	return &Floating{h: newHandle(p, "floating block store "+dir, closeFn)}, nil
}

// Append stores b with its predecessor list (at most 12 hashes, entry i
// being the 2^i-th ancestor). A block already stored is left unchanged.
// With flush, b is durable on return. Errors: ErrReadOnly,
// ErrInvalidArgument (more than 12 predecessors), ErrNoSpace, ErrIO.
func (f *Floating) Append(b *Block, preds []Hash, flush bool) error {
	p, err := f.h.acquire()
	if err != nil {
		return err
	}
	defer f.h.done()
	contents, contentsLen := bytesArg(b.Contents)
	metadata, metadataLen := bytesArg(b.Metadata)
	var predsPtr *C.uint8_t
	if len(preds) > 0 {
		predsPtr = (*C.uint8_t)(unsafe.Pointer(&preds[0][0]))
	}
	var e *C.tzs_error
	st := C.tzs_go_floating_append(p, (*C.uint8_t)(unsafe.Pointer(&b.Hash[0])), C.int32_t(b.Level),
		(*C.uint8_t)(unsafe.Pointer(&b.Predecessor[0])), contents, contentsLen,
		C.bool(b.Metadata != nil), metadata, metadataLen, predsPtr, C.size_t(len(preds)),
		C.bool(flush), &e)
	runtime.KeepAlive(f)
	runtime.KeepAlive(b)
	runtime.KeepAlive(preds)
	return check(st, e)
}

// Flush makes every appended block durable.
func (f *Floating) Flush() error {
	p, err := f.h.acquire()
	if err != nil {
		return err
	}
	defer f.h.done()
	var e *C.tzs_error
	st := C.tzs_floating_flush(p, &e)
	runtime.KeepAlive(f)
	return check(st, e)
}

// Sync loads, into a read-only handle, the blocks appended since open or
// the last Sync.
func (f *Floating) Sync() error {
	p, err := f.h.acquire()
	if err != nil {
		return err
	}
	defer f.h.done()
	var e *C.tzs_error
	st := C.tzs_floating_sync(p, &e)
	runtime.KeepAlive(f)
	return check(st, e)
}

// Mem reports whether the block with hash is stored.
func (f *Floating) Mem(hash Hash) (bool, error) {
	p, err := f.h.acquire()
	if err != nil {
		return false, err
	}
	defer f.h.done()
	var e *C.tzs_error
	st := C.tzs_floating_mem(p, (*C.uint8_t)(unsafe.Pointer(&hash[0])), &e)
	runtime.KeepAlive(f)
	if st == C.TZS_NOT_FOUND {
		return false, nil
	}
	return st == C.TZS_OK, check(st, e)
}

// FindPredecessors returns the block's predecessor list, or ErrNotFound.
func (f *Floating) FindPredecessors(hash Hash) ([]Hash, error) {
	p, err := f.h.acquire()
	if err != nil {
		return nil, err
	}
	defer f.h.done()
	var out C.tzs_bytes
	var e *C.tzs_error
	st := C.tzs_floating_find_predecessors(p, (*C.uint8_t)(unsafe.Pointer(&hash[0])), &out, &e)
	runtime.KeepAlive(f)
	if err := check(st, e); err != nil {
		return nil, err
	}
	return takeHashes(&out), nil
}

// ReadBlock returns the block, or ErrNotFound. ErrCorrupted reports a
// damaged record (other blocks stay readable).
func (f *Floating) ReadBlock(hash Hash) (*Block, error) {
	p, err := f.h.acquire()
	if err != nil {
		return nil, err
	}
	defer f.h.done()
	var out C.tzs_block
	var e *C.tzs_error
	st := C.tzs_floating_read_block(p, (*C.uint8_t)(unsafe.Pointer(&hash[0])), &out, &e)
	runtime.KeepAlive(f)
	if err := check(st, e); err != nil {
		return nil, err
	}
	return takeBlock(&out), nil
}

// ReadBlockAndPredecessors returns the block and its predecessor list, or
// ErrNotFound.
func (f *Floating) ReadBlockAndPredecessors(hash Hash) (*Block, []Hash, error) {
	p, err := f.h.acquire()
	if err != nil {
		return nil, nil, err
	}
	defer f.h.done()
	var out C.tzs_block
	var preds C.tzs_bytes
	var e *C.tzs_error
	st := C.tzs_floating_read_block_and_predecessors(p, (*C.uint8_t)(unsafe.Pointer(&hash[0])), &out, &preds, &e)
	runtime.KeepAlive(f)
	if err := check(st, e); err != nil {
		return nil, nil, err
	}
	return takeBlock(&out), takeHashes(&preds), nil
}

// Len returns the number of blocks stored.
func (f *Floating) Len() (uint64, error) {
	p, err := f.h.acquire()
	if err != nil {
		return 0, err
	}
	defer f.h.done()
	n := C.tzs_floating_len(p)
	runtime.KeepAlive(f)
	return uint64(n), nil
}

// ForEach calls fn for every block stored when it starts, in file order,
// with its predecessor list (Octez's fold_left_with_pred_s). An error
// returned by fn stops the iteration and is returned. fn may use the store,
// Close included. Errors: ErrCorrupted (the iteration stops there), ErrIO.
func (f *Floating) ForEach(fn func(b *Block, preds []Hash) error) error {
	it, err := f.newIter()
	if err != nil {
		return err
	}
	defer C.tzs_floating_iter_free(it)
	for {
		var out C.tzs_block
		var preds C.tzs_bytes
		var e *C.tzs_error
		st := C.tzs_floating_iter_next(it, &out, &preds, &e)
		if st == C.TZS_DONE {
			return nil
		}
		if err := check(st, e); err != nil {
			return err
		}
		b := takeBlock(&out)
		if err := fn(b, takeHashes(&preds)); err != nil {
			return err
		}
	}
}

// newIter creates a C iterator; it stays valid after the store is closed,
// so only its creation holds the handle.
func (f *Floating) newIter() (*C.tzs_floating_iter, error) {
	p, err := f.h.acquire()
	if err != nil {
		return nil, err
	}
	defer f.h.done()
	var it *C.tzs_floating_iter
	var e *C.tzs_error
	st := C.tzs_floating_iter_new(p, &it, &e)
	runtime.KeepAlive(f)
	return it, check(st, e)
}

// Close releases the handle and its lock, after calls in progress return.
// Closing twice is a no-op; calls after Close return ErrClosed.
func (f *Floating) Close() error {
	f.h.Close()
	return nil
}

// takeBlock copies a library-filled block into Go memory and frees it.
func takeBlock(c *C.tzs_block) *Block {
	defer C.tzs_block_free(c)
	b := &Block{
		Hash:        *(*Hash)(unsafe.Pointer(&c.hash[0])),
		Level:       int32(c.level),
		Predecessor: *(*Hash)(unsafe.Pointer(&c.predecessor[0])),
		Contents:    copyBytes(&c.contents),
	}
	if c.has_metadata {
		b.Metadata = copyBytes(&c.metadata)
	}
	return b
}

// takeHashes splits a library-allocated list of 32-byte hashes and frees it.
func takeHashes(c *C.tzs_bytes) []Hash {
	raw := takeBytes(c)
	out := make([]Hash, len(raw)/32)
	for i := range out {
		copy(out[i][:], raw[32*i:])
	}
	return out
}
