package tzstore

/*
#include "tzstore.h"
#include "block_arg.h"

// Appends a block built on the C stack; context NULL records none (zeros).
static tzs_status tzs_go_floating_append(tzs_floating *f, const uint8_t *hash, int32_t level,
    const uint8_t *pred, uint8_t *contents, size_t contents_len, bool has_metadata,
    uint8_t *metadata, size_t metadata_len, const uint8_t *context, const uint8_t *preds,
    size_t n_preds, bool flush, tzs_error **err) {
  tzs_block b = tzs_go_block(hash, level, pred, contents, contents_len, has_metadata, metadata,
      metadata_len);
  if (context == NULL) return tzs_floating_append(f, &b, preds, n_preds, flush, err);
  return tzs_floating_append_with_context(f, &b, context, preds, n_preds, flush, err);
}
*/
import "C"

import "unsafe"

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
	h, err := openHandle(dir, "floating block store", func(cdir *C.char, p **C.tzs_floating, e cErrOut) cStatus {
		return C.tzs_floating_open(cdir, C.tzs_floating_kind(kind), C.uint32_t(flags), p, e)
	}, func(p *C.tzs_floating) { C.tzs_floating_close(p) })
	if err != nil {
		return nil, err
	}
	return &Floating{h: h}, nil
}

// Append stores b with its predecessor list (at most 12 hashes, entry i
// being the 2^i-th ancestor). A block already stored is left unchanged.
// With flush, b is durable on return. Errors: ErrReadOnly,
// ErrInvalidArgument (more than 12 predecessors), ErrNoSpace, ErrIO.
func (f *Floating) Append(b *Block, preds []Hash, flush bool) error {
	return f.append(b, nil, preds, flush)
}

// AppendWithContext is Append recording the block's resulting context hash
// (Octez's append_block), which ResultingContextHash reads back; Append
// records zeros.
func (f *Floating) AppendWithContext(b *Block, ctx Hash, preds []Hash, flush bool) error {
	return f.append(b, &ctx, preds, flush)
}

func (f *Floating) append(b *Block, ctx *Hash, preds []Hash, flush bool) error {
	return call(f.h, func(p *C.tzs_floating, e cErrOut) cStatus {
		contents, contentsLen := bytesArg(b.Contents)
		metadata, metadataLen := bytesArg(b.Metadata)
		var context, predsPtr *C.uint8_t
		if ctx != nil {
			context = hashArg(ctx)
		}
		if len(preds) > 0 {
			predsPtr = hashArg(&preds[0])
		}
		return C.tzs_go_floating_append(p, hashArg(&b.Hash), C.int32_t(b.Level), hashArg(&b.Predecessor),
			contents, contentsLen, C.bool(b.Metadata != nil), metadata, metadataLen, context, predsPtr,
			C.size_t(len(preds)), C.bool(flush), e)
	})
}

// ResultingContextHash returns the resulting context hash the floating
// block hash was appended with (zeros if none was given), from the index
// alone (Octez's find_info), or ErrNotFound. Errors: ErrCorrupted, ErrIO.
func (f *Floating) ResultingContextHash(hash Hash) (Hash, error) {
	var out Hash
	err := call(f.h, func(p *C.tzs_floating, e cErrOut) cStatus {
		return C.tzs_floating_resulting_context_hash(p, hashArg(&hash), hashArg(&out), e)
	})
	if err != nil {
		return Hash{}, err
	}
	return out, nil
}

// Flush makes every appended block durable.
func (f *Floating) Flush() error {
	return call(f.h, func(p *C.tzs_floating, e cErrOut) cStatus { return C.tzs_floating_flush(p, e) })
}

// Sync loads, into a read-only handle, the blocks appended since open or
// the last Sync.
func (f *Floating) Sync() error {
	return call(f.h, func(p *C.tzs_floating, e cErrOut) cStatus { return C.tzs_floating_sync(p, e) })
}

// Mem reports whether the block with hash is stored.
func (f *Floating) Mem(hash Hash) (bool, error) {
	return callMem(f.h, func(p *C.tzs_floating, e cErrOut) cStatus {
		return C.tzs_floating_mem(p, hashArg(&hash), e)
	})
}

// FindPredecessors returns the block's predecessor list, or ErrNotFound.
func (f *Floating) FindPredecessors(hash Hash) ([]Hash, error) {
	return callOut(f.h, func(p *C.tzs_floating, out *C.tzs_bytes, e cErrOut) cStatus {
		return C.tzs_floating_find_predecessors(p, hashArg(&hash), out, e)
	}, takeHashes)
}

// ReadBlock returns the block, or ErrNotFound. ErrCorrupted reports a
// damaged record (other blocks stay readable).
func (f *Floating) ReadBlock(hash Hash) (*Block, error) {
	return callOut(f.h, func(p *C.tzs_floating, out *C.tzs_block, e cErrOut) cStatus {
		return C.tzs_floating_read_block(p, hashArg(&hash), out, e)
	}, takeBlock)
}

// ReadBlockAndPredecessors returns the block and its predecessor list, or
// ErrNotFound.
func (f *Floating) ReadBlockAndPredecessors(hash Hash) (*Block, []Hash, error) {
	var out C.tzs_block
	var preds C.tzs_bytes
	err := call(f.h, func(p *C.tzs_floating, e cErrOut) cStatus {
		return C.tzs_floating_read_block_and_predecessors(p, hashArg(&hash), &out, &preds, e)
	})
	if err != nil {
		return nil, nil, err
	}
	return takeBlock(&out), takeHashes(&preds), nil
}

// Len returns the number of blocks stored.
func (f *Floating) Len() (uint64, error) {
	var n C.uint64_t
	err := f.h.use(func(p *C.tzs_floating) error {
		n = C.tzs_floating_len(p)
		return nil
	})
	return uint64(n), err
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
	var out C.tzs_block
	var preds C.tzs_bytes
	return drain(func(e cErrOut) cStatus {
		out, preds = C.tzs_block{}, C.tzs_bytes{}
		return C.tzs_floating_iter_next(it, &out, &preds, e)
	}, func() error {
		b := takeBlock(&out)
		return fn(b, takeHashes(&preds))
	})
}

// newIter creates a C iterator; it stays valid after the store is closed,
// so only its creation holds the handle.
func (f *Floating) newIter() (*C.tzs_floating_iter, error) {
	return callOut(f.h, func(p *C.tzs_floating, it **C.tzs_floating_iter, e cErrOut) cStatus {
		return C.tzs_floating_iter_new(p, it, e)
	}, deref[*C.tzs_floating_iter])
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
