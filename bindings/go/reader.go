package tzstore

/*
#include "tzstore.h"
*/
import "C"

import (
	"sync"
	"unsafe"
)

// Reader reads blocks and indexed-file values without copying them
// (tzs_reader): BlockStore.ReadView, BlockStore.ReadByLevelView,
// Floating.ReadView and Cemented.ReadViewByLevel fill a BlockView whose
// Contents and Metadata point into memory the Reader lends (the store's
// file mapping, or the Reader's own buffer); IndexedFile.ReadView fills a
// ValueView whose Value and Header do the same.
//
// A Reader holds what its last read returned, and only that: one block or
// one value, whichever was read last, from any store. Its views stay
// valid, and their bytes unchanged, until the next read through the same
// Reader (of a block or a value, whatever that read's outcome, an error
// included), Release or Close — even if meanwhile a merge retires the
// block's floating file, a rolling GC deletes its cemented chunk, an
// indexed file's GC unlinks the values file, or the store is closed, since
// the Reader keeps its own reference to the mapping. Holding a view of a
// retired file keeps that file's disk space until the view is released.
//
// Unlike the store handles, a Reader is meant for one goroutine at a time:
// give each reading goroutine its own (any number of Readers may read the
// same store at once, alongside its writes, merges and GCs). Calls on one
// Reader from several goroutines are serialised, so they are memory-safe,
// but each read ends the views of the one before it, whichever goroutine
// made it. Close it when done; a finalizer frees a forgotten Reader, but
// only once neither it nor any BlockView or ValueView it filled is
// reachable.
type Reader struct {
	h *handle[C.tzs_reader]
	// The C reader takes one call at a time; mu serialises reads and
	// Release (Close waits for them through the handle).
	mu sync.Mutex
}

// BlockView is a block read without a copy (tzs_block_view): Hash, Level
// and Predecessor are copied in; Contents and Metadata are borrowed from the
// Reader that filled the view.
//
// The slices are valid only until that Reader's next read, Release or
// Close: reading them afterwards reads memory that may be unmapped (a
// crash) or reused. Never write to them (the bytes may be a read-only file
// mapping shared with other readers). To keep a block, copy what you need
// (append([]byte(nil), v.Contents...), or Copy for the whole block) before
// the Reader's next read. A BlockView keeps its Reader reachable, so the
// Reader's finalizer never ends a view that is still reachable; slices
// taken out of a BlockView do not: keep the BlockView or the Reader alive
// (e.g. defer r.Close()) while using them.
type BlockView struct {
	Hash        Hash
	Level       int32
	Predecessor Hash
	// Contents is the block's header and operations (nil when empty).
	Contents []byte
	// HasMetadata says whether Metadata holds the block's metadata: false
	// when the read did not ask for it or the block has none (Metadata is
	// then nil); a block with empty metadata has a non-nil empty Metadata,
	// as in Block.
	HasMetadata bool
	Metadata    []byte

	r *Reader // keeps the Reader, whose memory the slices point into, reachable
}

// NewReader creates a Reader holding nothing.
func NewReader() (*Reader, error) {
	var p *C.tzs_reader
	var e *C.tzs_error
	if err := check(C.tzs_reader_new(&p, &e), e); err != nil {
		return nil, err
	}
	return &Reader{h: newHandle(p, "reader", func(p *C.tzs_reader) { C.tzs_reader_free(p) })}, nil
}

// Release ends the views of the Reader's last read and lets go of what they
// pointed into (a retired file's space can then be reclaimed). The Reader
// stays usable. A no-op on a closed Reader.
func (r *Reader) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	_ = r.h.use(func(p *C.tzs_reader) error {
		C.tzs_reader_release(p)
		return nil
	})
}

// Close frees the Reader and ends its views, after a read in progress
// returns. Closing twice is a no-op; reads after Close return ErrClosed.
func (r *Reader) Close() error {
	r.h.Close()
	return nil
}

// read runs one borrowed read of a block through r: f makes the C call
// (through the store's handle) on the C reader, filling out.
func (r *Reader) read(f func(rp *C.tzs_reader, out *C.tzs_block_view) error) (BlockView, error) {
	var out C.tzs_block_view
	if err := r.lend(func(rp *C.tzs_reader) error { return f(rp, &out) }); err != nil {
		return BlockView{}, err
	}
	v := BlockView{
		Hash:        *(*Hash)(unsafe.Pointer(&out.hash[0])),
		Level:       int32(out.level),
		Predecessor: *(*Hash)(unsafe.Pointer(&out.predecessor[0])),
		Contents:    lent(out.contents),
		HasMetadata: bool(out.has_metadata),
		r:           r,
	}
	if v.HasMetadata {
		v.Metadata = lent(out.metadata)
		if v.Metadata == nil {
			v.Metadata = []byte{}
		}
	}
	return v, nil
}

// lend runs one borrowed read through r (f makes the C call on the C
// reader, through the store's handle), holding r's mutex so that reads take
// turns. A read that fails, even before reaching C (a closed store), leaves
// the Reader holding nothing, as the C calls do.
func (r *Reader) lend(f func(rp *C.tzs_reader) error) error {
	if r == nil {
		return &Error{Status: StatusInvalidArgument, Message: "nil reader"}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.h.use(func(rp *C.tzs_reader) error {
		err := f(rp)
		if err != nil {
			C.tzs_reader_release(rp)
		}
		return err
	})
}

// lent is the Go view of bytes the library lends, without a copy (nil when
// empty).
func lent(v C.tzs_view) []byte {
	if v.len == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(v.ptr)), int(v.len))
}

// Copy returns the block the view shows, its bytes copied into Go memory
// (valid for good), with Metadata nil unless HasMetadata, as the copying
// reads return it.
func (v *BlockView) Copy() *Block {
	b := &Block{Hash: v.Hash, Level: v.Level, Predecessor: v.Predecessor,
		Contents: append([]byte{}, v.Contents...)}
	if v.HasMetadata {
		b.Metadata = append([]byte{}, v.Metadata...)
	}
	return b
}

// ReadView is Read without a copy: the block distance blocks below hash (0
// = the block itself), its contents and metadata (if readMetadata) lent by
// r until r's next read, Release or Close (see Reader and BlockView).
// ErrNotFound as for Read (r then holds nothing). Errors: ErrCorrupted
// (each record's checksum is checked before any view of it is given, so a
// view never shows damaged bytes), ErrIO, ErrClosed (the store or r).
func (s *BlockStore) ReadView(r *Reader, hash Hash, distance uint32, readMetadata bool) (BlockView, error) {
	return r.read(func(rp *C.tzs_reader, out *C.tzs_block_view) error {
		return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
			return C.tzs_block_store_read_view(p, rp, hashArg(&hash), C.uint32_t(distance), C.bool(readMetadata),
				out, e)
		})
	})
}

// ReadByLevelView is ReadByLevel without a copy, as ReadView: the cemented
// block at level, or ErrNotFound if that level is not cemented (yet, or
// any more).
func (s *BlockStore) ReadByLevelView(r *Reader, level int32, readMetadata bool) (BlockView, error) {
	return r.read(func(rp *C.tzs_reader, out *C.tzs_block_view) error {
		return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
			return C.tzs_block_store_read_by_level_view(p, rp, C.int32_t(level), C.bool(readMetadata), out, e)
		})
	})
}

// ReadView is ReadBlock without a copy, as BlockStore.ReadView (metadata
// always read): the block, or ErrNotFound. Errors: ErrCorrupted, ErrIO,
// ErrClosed.
func (f *Floating) ReadView(r *Reader, hash Hash) (BlockView, error) {
	return r.read(func(rp *C.tzs_reader, out *C.tzs_block_view) error {
		return call(f.h, func(p *C.tzs_floating, e cErrOut) cStatus {
			return C.tzs_floating_read_view(p, rp, hashArg(&hash), out, e)
		})
	})
}

// ReadViewByLevel is ReadByLevel without a copy, as BlockStore.ReadView:
// contents lent from the chunk's mapping, metadata (decompressed) from r's
// own buffer. ErrNotFound if no chunk holds level. Errors: ErrCorrupted,
// ErrIO, ErrClosed.
func (c *Cemented) ReadViewByLevel(r *Reader, level int32, readMetadata bool) (BlockView, error) {
	return r.read(func(rp *C.tzs_reader, out *C.tzs_block_view) error {
		return call(c.h, func(p *C.tzs_cemented, e cErrOut) cStatus {
			return C.tzs_cemented_read_view_by_level(p, rp, C.int32_t(level), C.bool(readMetadata), out, e)
		})
	})
}

// ValueView is an indexed file's value read without a copy
// (IndexedFile.ReadView): Value and Header are borrowed from the Reader
// that filled the view, under the same rules as BlockView's slices: valid
// only until that Reader's next read (of a block or a value), Release or
// Close; never written to; copied (append([]byte(nil), v.Value...), or
// Copy) to be kept. A ValueView keeps its Reader reachable; slices taken
// out of it do not.
type ValueView struct {
	// Value is the key's value, as Read returns it (with a HeaderInValue
	// store, its first HeaderSize bytes are the header); non-nil, empty
	// for an empty value.
	Value []byte
	// Header is the key's header (HeaderSize bytes), as ReadWithHeader
	// returns it; non-nil, empty for a zero header size.
	Header []byte

	r *Reader // keeps the Reader, whose memory the slices point into, reachable
}

// Copy returns the view with its bytes copied into Go memory (valid for
// good, and holding no Reader).
func (v *ValueView) Copy() ValueView {
	return ValueView{Value: append([]byte{}, v.Value...), Header: append([]byte{}, v.Header...)}
}

// ReadView is ReadWithHeader without a copy: the key's value and header,
// lent by r until r's next read, Release or Close (see Reader and
// ValueView). The record's checksum is checked before any view of it is
// given (once per mapping of the values file), so a view never shows
// damaged bytes; values appended since the file was last mapped are read
// into r. ErrNotFound if the key is not stored (r then holds nothing).
// Errors: ErrInvalidArgument (a key of the wrong size, a nil r),
// ErrCorrupted (as Read), ErrIO, ErrClosed (the store or r).
func (f *IndexedFile) ReadView(r *Reader, key []byte) (ValueView, error) {
	var value, header C.tzs_view
	err := r.lend(func(rp *C.tzs_reader) error {
		return call(f.h, func(p *C.tzs_indexed_file, e cErrOut) cStatus {
			k, kn := bytesArg(key)
			return C.tzs_indexed_file_read_view(p, rp, k, kn, &value, &header, e)
		})
	})
	if err != nil {
		return ValueView{}, err
	}
	return ValueView{Value: lentNonNil(value), Header: lentNonNil(header), r: r}, nil
}

// lentNonNil is lent, but an empty non-nil slice when empty (as the
// copying reads return empty values and headers).
func lentNonNil(v C.tzs_view) []byte {
	if b := lent(v); b != nil {
		return b
	}
	return []byte{}
}
