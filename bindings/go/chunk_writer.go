package tzstore

/*
#include "tzstore.h"
#include "block_arg.h"

// Pushes a block built on the C stack; context NULL records none (zeros).
static tzs_status tzs_go_chunk_writer_push(tzs_chunk_writer *w, const uint8_t *hash, int32_t level,
    const uint8_t *pred, uint8_t *contents, size_t contents_len, bool has_metadata,
    uint8_t *metadata, size_t metadata_len, const uint8_t *context, tzs_error **err) {
  tzs_block b = tzs_go_block(hash, level, pred, contents, contents_len, has_metadata, metadata,
      metadata_len);
  if (context == NULL) return tzs_chunk_writer_push(w, &b, err);
  return tzs_chunk_writer_push_with_context(w, &b, context, err);
}
*/
import "C"

import "sync"

// ChunkWriter is a chunk being cemented block by block (tzs_chunk_writer),
// so that a whole cycle need not be in memory at once. It holds the
// cemented store's write lock until Commit or Abort: other writes to the
// store (Cement, CementMetadata, GC, another BeginChunk) wait meanwhile, so
// end every writer. It keeps the store alive, so Commit works even after
// Cemented.Close. Safe for concurrent use, though pushes only make sense in
// level order.
type ChunkWriter struct {
	h *handle[C.tzs_chunk_writer]
	// The C writer takes one call at a time; pushMu serialises pushes
	// (Commit and Abort wait for them through the handle).
	pushMu sync.Mutex
}

// BeginChunk begins the chunk of levels start..=end (inclusive), to be
// filled with Push in level order and made durable and visible by Commit.
// Abort, a failed Push or a failed Commit leaves nothing of it, as does a
// crash before Commit returns. writeMetadata and checkConsistency are as in
// Cement. A writer dropped without Commit or Abort is aborted by a
// finalizer, but it keeps the store's write lock until the garbage
// collector runs it. Errors: ErrInconsistent (end < start, overlap with a
// cemented chunk, with checkConsistency not right after the highest
// cemented level), ErrReadOnly, ErrNoSpace, ErrIO.
func (c *Cemented) BeginChunk(start, end int32, writeMetadata, checkConsistency bool) (*ChunkWriter, error) {
	p, err := callOut(c.h, func(p *C.tzs_cemented, out **C.tzs_chunk_writer, e cErrOut) cStatus {
		return C.tzs_cemented_begin_chunk(p, C.int32_t(start), C.int32_t(end), C.bool(writeMetadata),
			C.bool(checkConsistency), out, e)
	}, deref[*C.tzs_chunk_writer])
	if err != nil {
		return nil, err
	}
	return &ChunkWriter{h: newHandle(p, "chunk writer", func(p *C.tzs_chunk_writer) { C.tzs_chunk_writer_abort(p) })}, nil
}

func (w *ChunkWriter) push(b *Block, ctx *Hash) error {
	w.pushMu.Lock()
	defer w.pushMu.Unlock()
	return call(w.h, func(p *C.tzs_chunk_writer, e cErrOut) cStatus {
		contents, contentsLen := bytesArg(b.Contents)
		metadata, metadataLen := bytesArg(b.Metadata)
		var context *C.uint8_t
		if ctx != nil {
			context = hashArg(ctx)
		}
		return C.tzs_go_chunk_writer_push(p, hashArg(&b.Hash), C.int32_t(b.Level), hashArg(&b.Predecessor),
			contents, contentsLen, C.bool(b.Metadata != nil), metadata, metadataLen, context, e)
	})
}

// Push adds the next block of the chunk (its level the previous one's + 1,
// starting at the chunk's start), copying it; its resulting context hash
// is recorded as zeros. Errors: ErrInconsistent (wrong level, a duplicated
// or already cemented hash, a broken predecessor link with
// checkConsistency), ErrNoSpace, ErrIO, ErrClosed after Commit or Abort.
// After an error only Abort is useful: Commit fails.
func (w *ChunkWriter) Push(b *Block) error { return w.push(b, nil) }

// PushWithContext is Push recording the block's resulting context hash,
// which Cemented.ResultingContextHash reads back.
func (w *ChunkWriter) PushWithContext(b *Block, ctx Hash) error { return w.push(b, &ctx) }

// Commit makes the chunk durable, then visible to readers at once, and
// returns its range. It ends the writer whatever the outcome (later calls
// return ErrClosed). Errors: ErrInconsistent (fewer blocks pushed than the
// range holds, or a push failed), ErrNoSpace, ErrIO, ErrClosed (already
// committed or aborted); nothing of the chunk is then visible.
func (w *ChunkWriter) Commit() (Chunk, error) {
	p := w.h.take()
	if p == nil {
		return Chunk{}, closedError(w.h.what)
	}
	var out C.tzs_chunk
	var e *C.tzs_error
	if err := check(C.tzs_chunk_writer_commit(p, &out, &e), e); err != nil {
		return Chunk{}, err
	}
	return goChunk(out), nil
}

// Abort abandons the chunk: nothing of it stays, and the store's write
// lock is released. A no-op after Commit or Abort.
func (w *ChunkWriter) Abort() { w.h.Close() }

// CementMetadata writes the metadata of blocks of one chunk cemented
// without metadata (or whose metadata GC dropped), in level order, each
// the cemented block at its level (Octez's cement_blocks_metadata); blocks
// without metadata are skipped. Durable on return; a crash leaves the
// chunk with no metadata or all of it. Returns the chunk's range. Errors:
// ErrInvalidArgument (no block, levels not increasing, the chunk already
// has metadata), ErrNotFound (a level is not cemented), ErrInconsistent
// (the blocks span two chunks, or a hash is not the cemented one),
// ErrReadOnly, ErrCorrupted, ErrNoSpace, ErrIO.
func (c *Cemented) CementMetadata(blocks []*Block) (Chunk, error) {
	arr, free := cBlockArray(blocks)
	defer free()
	return callOut(c.h, func(p *C.tzs_cemented, out *C.tzs_chunk, e cErrOut) cStatus {
		return C.tzs_cemented_cement_metadata(p, arr, C.size_t(len(blocks)), out, e)
	}, func(out *C.tzs_chunk) Chunk { return goChunk(*out) })
}
