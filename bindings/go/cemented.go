package tzstore

/*
#include <stdlib.h>
#include "tzstore.h"
*/
import "C"

import "unsafe"

// Chunk is the levels of a cemented chunk, inclusive on both ends
// (tzs_chunk).
type Chunk struct {
	StartLevel int32
	EndLevel   int32
}

// Cemented is a cemented block store (tzs_cemented): finalized blocks in
// chunk files by level, two indexes, metadata in zstd zips. Safe for
// concurrent use (reads run in parallel, writes are serialised).
type Cemented struct {
	h *handle[C.tzs_cemented]
}

// OpenCemented opens the store in dir; a read-write open creates it and
// completes or removes a chunk a crash left unindexed. Flags: ReadOnly,
// NoFsync. logSize is both indexes' log size (0 = default). Errors:
// ErrLocked, ErrNotFound (read-only open of a missing store),
// ErrCorrupted, ErrIO, ErrInvalidArgument.
func OpenCemented(dir string, flags Flags, logSize uint64) (*Cemented, error) {
	h, err := openHandle(dir, "cemented store", func(cdir *C.char, p **C.tzs_cemented, e cErrOut) cStatus {
		return C.tzs_cemented_open(cdir, C.uint32_t(flags), C.uint64_t(logSize), p, e)
	}, func(p *C.tzs_cemented) { C.tzs_cemented_close(p) })
	if err != nil {
		return nil, err
	}
	return &Cemented{h: h}, nil
}

// level runs a C call writing one level.
func (c *Cemented) level(f func(p *C.tzs_cemented, out *C.int32_t, e cErrOut) cStatus) (int32, error) {
	return callOut(c.h, f, func(l *C.int32_t) int32 { return int32(*l) })
}

// LowestLevel returns the lowest cemented level, or ErrNotFound when the
// store is empty.
func (c *Cemented) LowestLevel() (int32, error) {
	return c.level(func(p *C.tzs_cemented, out *C.int32_t, e cErrOut) cStatus {
		return C.tzs_cemented_lowest_level(p, out, e)
	})
}

// HighestLevel returns the highest cemented level, or ErrNotFound when the
// store is empty.
func (c *Cemented) HighestLevel() (int32, error) {
	return c.level(func(p *C.tzs_cemented, out *C.int32_t, e cErrOut) cStatus {
		return C.tzs_cemented_highest_level(p, out, e)
	})
}

// LevelOf returns the level of a cemented block, or ErrNotFound.
func (c *Cemented) LevelOf(hash Hash) (int32, error) {
	return c.level(func(p *C.tzs_cemented, out *C.int32_t, e cErrOut) cStatus {
		return C.tzs_cemented_level_of(p, hashArg(&hash), out, e)
	})
}

// HashOf returns the hash of the cemented block at level, or ErrNotFound.
func (c *Cemented) HashOf(level int32) (Hash, error) {
	var h Hash
	err := call(c.h, func(p *C.tzs_cemented, e cErrOut) cStatus {
		return C.tzs_cemented_hash_of(p, C.int32_t(level), hashArg(&h), e)
	})
	return h, err
}

// ReadByLevel returns the block at level (with its stored metadata if
// readMetadata), or ErrNotFound. ErrCorrupted: a damaged record or
// metadata entry.
func (c *Cemented) ReadByLevel(level int32, readMetadata bool) (*Block, error) {
	return callOut(c.h, func(p *C.tzs_cemented, out *C.tzs_block, e cErrOut) cStatus {
		return C.tzs_cemented_read_by_level(p, C.int32_t(level), C.bool(readMetadata), out, e)
	}, takeBlock)
}

// ReadByHash returns the cemented block hash, or ErrNotFound.
func (c *Cemented) ReadByHash(hash Hash, readMetadata bool) (*Block, error) {
	return callOut(c.h, func(p *C.tzs_cemented, out *C.tzs_block, e cErrOut) cStatus {
		return C.tzs_cemented_read_by_hash(p, hashArg(&hash), C.bool(readMetadata), out, e)
	}, takeBlock)
}

// ReadMetadata returns the metadata of the block at level, or ErrNotFound
// if it has none stored (none given, not cemented, or dropped by GC).
func (c *Cemented) ReadMetadata(level int32) ([]byte, error) {
	return callOut(c.h, func(p *C.tzs_cemented, out *C.tzs_bytes, e cErrOut) cStatus {
		return C.tzs_cemented_read_metadata(p, C.int32_t(level), out, e)
	}, takeBytes)
}

// Cement stores blocks of consecutive levels, in order, as one chunk
// (durable on return unless opened with NoFsync). Errors:
// ErrInvalidArgument (no block), ErrInconsistent (with checkConsistency: a
// gap, an overlap, a duplicated hash or a broken predecessor link; the
// message says where), ErrReadOnly, ErrNoSpace, ErrIO. After an error
// nothing of the chunk is visible.
func (c *Cemented) Cement(blocks []*Block, writeMetadata, checkConsistency bool) error {
	arr, free := cBlockArray(blocks)
	defer free()
	return call(c.h, func(p *C.tzs_cemented, e cErrOut) cStatus {
		return C.tzs_cemented_cement(p, arr, C.size_t(len(blocks)), C.bool(writeMetadata), C.bool(checkConsistency), e)
	})
}

// cBlockArray copies blocks into one C array of tzs_block and one C buffer
// of their contents and metadata (Go memory passed to C must not hold Go
// pointers, and a tzs_block holds two); free releases both.
func cBlockArray(blocks []*Block) (arr *C.tzs_block, free func()) {
	n := len(blocks)
	total := 0
	for _, b := range blocks {
		total += len(b.Contents) + len(b.Metadata)
	}
	arr = (*C.tzs_block)(C.calloc(C.size_t(n+1), C.size_t(unsafe.Sizeof(C.tzs_block{}))))
	buf := (*byte)(C.malloc(C.size_t(total + 1)))
	views := unsafe.Slice(arr, n+1)[:n]
	data := unsafe.Slice(buf, total+1)
	off := 0
	copyIn := func(src []byte) C.tzs_bytes {
		ptr := (*C.uint8_t)(unsafe.Pointer(&data[off]))
		off += copy(data[off:], src)
		return C.tzs_bytes{ptr: ptr, len: C.size_t(len(src))}
	}
	for i, b := range blocks {
		v := &views[i]
		for j := 0; j < 32; j++ {
			v.hash[j] = C.uint8_t(b.Hash[j])
			v.predecessor[j] = C.uint8_t(b.Predecessor[j])
		}
		v.level = C.int32_t(b.Level)
		v.contents = copyIn(b.Contents)
		v.has_metadata = C.bool(b.Metadata != nil)
		v.metadata = copyIn(b.Metadata)
	}
	return arr, func() {
		C.free(unsafe.Pointer(buf))
		C.free(unsafe.Pointer(arr))
	}
}

func (c *Cemented) list(metadata bool) ([]Chunk, error) {
	return callOut(c.h, func(p *C.tzs_cemented, l **C.tzs_chunk_list, e cErrOut) cStatus {
		if metadata {
			return C.tzs_cemented_metadata_chunks(p, l, e)
		}
		return C.tzs_cemented_chunks(p, l, e)
	}, takeChunks)
}

// takeChunks copies a library-allocated chunk list into Go memory and frees
// it.
func takeChunks(out **C.tzs_chunk_list) []Chunk {
	l := *out
	defer C.tzs_chunk_list_free(l)
	chunks := make([]Chunk, int(C.tzs_chunk_list_len(l)))
	for i := range chunks {
		chunks[i] = goChunk(C.tzs_chunk_list_get(l, C.size_t(i)))
	}
	return chunks
}

func goChunk(c C.tzs_chunk) Chunk {
	return Chunk{StartLevel: int32(c.start_level), EndLevel: int32(c.end_level)}
}

// Chunks returns the store's chunks, ascending.
func (c *Cemented) Chunks() ([]Chunk, error) { return c.list(false) }

// MetadataChunks returns the chunks that have a metadata zip, ascending.
func (c *Cemented) MetadataChunks() ([]Chunk, error) { return c.list(true) }

// FindChunk returns the chunk holding level, or ErrNotFound.
func (c *Cemented) FindChunk(level int32) (Chunk, error) {
	return callOut(c.h, func(p *C.tzs_cemented, out *C.tzs_chunk, e cErrOut) cStatus {
		return C.tzs_cemented_find_chunk(p, C.int32_t(level), out, e)
	}, func(out *C.tzs_chunk) Chunk { return goChunk(*out) })
}

// GC applies a history mode: HistoryArchive does nothing, HistoryFull
// drops the metadata of all but the last offset chunks, HistoryRolling all
// but the last offset chunks. Readers keep working meanwhile. Errors:
// ErrInvalidArgument (unknown mode), ErrReadOnly, ErrIO.
func (c *Cemented) GC(mode HistoryMode, offset uint32) error {
	return call(c.h, func(p *C.tzs_cemented, e cErrOut) cStatus {
		return C.tzs_cemented_gc(p, C.tzs_history_mode(mode), C.uint32_t(offset), e)
	})
}

// CheckConsistency checks every chunk, block and index entry and returns
// the first problem (ErrInconsistent or ErrCorrupted, the message saying
// where). The block genesis (if not nil) and the lowest stored block need
// no predecessor below them.
func (c *Cemented) CheckConsistency(genesis *Hash) error {
	return call(c.h, func(p *C.tzs_cemented, e cErrOut) cStatus {
		var g *C.uint8_t
		if genesis != nil {
			g = hashArg(genesis)
		}
		return C.tzs_cemented_check_consistency(p, g, e)
	})
}

// ForEach calls fn for every block of chunk (exactly one of the store's
// chunks) in level order, or returns ErrNotFound if there is no such
// chunk. An error returned by fn stops the iteration and is returned. fn
// must not Close the store (the iteration holds it).
func (c *Cemented) ForEach(chunk Chunk, readMetadata bool, fn func(b *Block) error) error {
	return c.h.use(func(p *C.tzs_cemented) error {
		var it *C.tzs_cemented_iter
		var e *C.tzs_error
		st := C.tzs_cemented_iter_new(p, C.tzs_chunk{start_level: C.int32_t(chunk.StartLevel),
			end_level: C.int32_t(chunk.EndLevel)}, C.bool(readMetadata), &it, &e)
		if err := check(st, e); err != nil {
			return err
		}
		defer C.tzs_cemented_iter_free(it)
		var out C.tzs_block
		return drain(func(e cErrOut) cStatus {
			out = C.tzs_block{}
			return C.tzs_cemented_iter_next(it, &out, e)
		}, func() error { return fn(takeBlock(&out)) })
	})
}

// SetZstdLevel sets the zstd level (1..=22) of metadata written from now on;
// 0 stores it uncompressed.
func (c *Cemented) SetZstdLevel(level int32) error {
	return call(c.h, func(p *C.tzs_cemented, e cErrOut) cStatus {
		return C.tzs_cemented_set_zstd_level(p, C.int32_t(level), e)
	})
}

// ResultingContextHash returns the resulting context hash the cemented
// block hash was stored with (zeros if none was given), read from its
// record without reading the block, or ErrNotFound if it is not cemented.
// Errors: ErrCorrupted, ErrIO.
func (c *Cemented) ResultingContextHash(hash Hash) (Hash, error) {
	var out Hash
	err := call(c.h, func(p *C.tzs_cemented, e cErrOut) cStatus {
		return C.tzs_cemented_resulting_context_hash(p, hashArg(&hash), hashArg(&out), e)
	})
	if err != nil {
		return Hash{}, err
	}
	return out, nil
}

// Sync loads, into a read-only handle, what the writer cemented or dropped
// since.
func (c *Cemented) Sync() error {
	return call(c.h, func(p *C.tzs_cemented, e cErrOut) cStatus { return C.tzs_cemented_sync(p, e) })
}

// Close releases the handle and its lock, after calls in progress return.
// Closing twice is a no-op; calls after Close return ErrClosed.
func (c *Cemented) Close() error {
	c.h.Close()
	return nil
}
