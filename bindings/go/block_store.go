package tzstore

/*
#include "tzstore.h"
#include "block_arg.h"

// Stores a block built on the C stack; context NULL records none (zeros).
static tzs_status tzs_go_block_store_store(tzs_block_store *s, const uint8_t *hash, int32_t level,
    const uint8_t *pred, uint8_t *contents, size_t contents_len, bool has_metadata,
    uint8_t *metadata, size_t metadata_len, const uint8_t *context, bool flush, tzs_error **err) {
  tzs_block b = tzs_go_block(hash, level, pred, contents, contents_len, has_metadata, metadata,
      metadata_len);
  if (context == NULL) return tzs_block_store_store_with(s, &b, flush, err);
  return tzs_block_store_store_with_context(s, &b, context, flush, err);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// HistoryMode says what the block store's GC keeps after a merge
// (TZS_HISTORY_*).
type HistoryMode uint32

const (
	// HistoryArchive keeps everything.
	HistoryArchive HistoryMode = C.TZS_HISTORY_ARCHIVE
	// HistoryFull keeps every block, and the metadata of the last
	// HistoryOffset cemented chunks.
	HistoryFull HistoryMode = C.TZS_HISTORY_FULL
	// HistoryRolling keeps only the last HistoryOffset cemented chunks,
	// blocks and metadata.
	HistoryRolling HistoryMode = C.TZS_HISTORY_ROLLING
)

// BlockStoreOptions are the options of OpenBlockStore
// (tzs_block_store_options); start from DefaultBlockStoreOptions.
type BlockStoreOptions struct {
	Flags Flags
	// HistoryMode of a new store; an existing store keeps its own.
	HistoryMode   HistoryMode
	HistoryOffset uint32
	// Workers is the number of threads for background merges (0 = 1).
	Workers uint32
	// IndexLogSize is the log size of every index (0 = default).
	IndexLogSize uint64
	// ZstdLevel (1..=22) compresses cemented metadata; 0 stores it
	// uncompressed (larger files; views read by level then point into
	// the metadata zip instead of decompressing).
	ZstdLevel int32
}

// DefaultBlockStoreOptions returns the library's defaults: read-write,
// fsync on, HistoryFull with offset 1, one merge thread.
func DefaultBlockStoreOptions() BlockStoreOptions {
	d := C.tzs_block_store_options_default()
	return BlockStoreOptions{
		Flags:         Flags(d.flags),
		HistoryMode:   HistoryMode(d.history_mode),
		HistoryOffset: uint32(d.history_offset),
		Workers:       uint32(d.workers),
		IndexLogSize:  uint64(d.index_log_size),
		ZstdLevel:     int32(d.zstd_level),
	}
}

// BlockStoreStats are the counters of BlockStore.Stats.
type BlockStoreStats struct {
	// CementedLowest and CementedHighest are -1 when nothing is cemented.
	CementedLowest  int32
	CementedHighest int32
	CementedBlocks  uint64
	FloatingBlocks  uint64
	BytesOnDisk     uint64
	// MergesDone counts merges since the store was created.
	MergesDone  uint64
	LastMergeMs uint64
	Merging     bool
}

// BlockStore is a node's block store (tzs_block_store): the floating and
// cemented stores under one directory, merged in the background. Stores,
// reads and a running merge may overlap from any goroutines.
type BlockStore struct {
	h *handle[C.tzs_block_store]
}

// OpenBlockStore opens the store in dir; a read-write open creates it and
// repairs what a crash left. Errors: ErrLocked (another read-write
// instance), ErrNotFound (read-only open of a missing store),
// ErrInvalidArgument (unknown flags, history mode or zstd level),
// ErrCorrupted, ErrIO.
func OpenBlockStore(dir string, opts BlockStoreOptions) (*BlockStore, error) {
	o := opts.c()
	h, err := openHandle(dir, "block store", func(cdir *C.char, p **C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_open(cdir, &o, p, e)
	}, closeBlockStore)
	if err != nil {
		return nil, err
	}
	return &BlockStore{h: h}, nil
}

func (opts BlockStoreOptions) c() C.tzs_block_store_options {
	return C.tzs_block_store_options{
		flags:          C.uint32_t(opts.Flags),
		history_mode:   C.uint32_t(opts.HistoryMode),
		history_offset: C.uint32_t(opts.HistoryOffset),
		workers:        C.uint32_t(opts.Workers),
		index_log_size: C.uint64_t(opts.IndexLogSize),
		zstd_level:     C.int32_t(opts.ZstdLevel),
	}
}

func closeBlockStore(p *C.tzs_block_store) { C.tzs_block_store_close(p) }

// Store stores b (durable on return unless opened with NoFsync); the
// library computes its predecessor list. Storing a stored block is a no-op.
// Errors: ErrInconsistent (the predecessor is unknown, except for the first
// block of an empty store, or the level is not the predecessor's plus
// one), ErrReadOnly, ErrNoSpace, ErrIO.
func (s *BlockStore) Store(b *Block) error {
	return s.StoreWith(b, true)
}

// StoreWith stores b like Store, durable on return only when flush is true
// (Octez's store_block ?flush): without it the block is readable at once
// and survives a crash of the process, and a power cut keeps it only once a
// later flushed store or Flush has returned, so a burst of blocks costs one
// fsync.
func (s *BlockStore) StoreWith(b *Block, flush bool) error { return s.store(b, nil, flush) }

// StoreWithContext is StoreWith recording the block's resulting context
// hash (Octez's store_block block resulting_context_hash), which
// ResultingContextHash reads back; Store and StoreWith record zeros. Merges
// keep it.
func (s *BlockStore) StoreWithContext(b *Block, ctx Hash, flush bool) error {
	return s.store(b, &ctx, flush)
}

func (s *BlockStore) store(b *Block, ctx *Hash, flush bool) error {
	return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		contents, contentsLen := bytesArg(b.Contents)
		metadata, metadataLen := bytesArg(b.Metadata)
		var context *C.uint8_t
		if ctx != nil {
			context = hashArg(ctx)
		}
		return C.tzs_go_block_store_store(p, hashArg(&b.Hash), C.int32_t(b.Level), hashArg(&b.Predecessor),
			contents, contentsLen, C.bool(b.Metadata != nil), metadata, metadataLen, context, C.bool(flush), e)
	})
}

// ResultingContextHash returns the resulting context hash the block hash
// was stored with (zeros if none was given), without reading the block:
// from the floating index or the cemented record. ErrNotFound if the block
// is not stored. Errors: ErrCorrupted, ErrIO.
func (s *BlockStore) ResultingContextHash(hash Hash) (Hash, error) {
	var out Hash
	err := call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_resulting_context_hash(p, hashArg(&hash), hashArg(&out), e)
	})
	if err != nil {
		return Hash{}, err
	}
	return out, nil
}

// Flush makes every block stored so far durable (one fsync). ErrReadOnly
// on a read-only handle.
func (s *BlockStore) Flush() error {
	return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus { return C.tzs_block_store_flush(p, e) })
}

// Mem reports whether the block is stored (floating or cemented).
func (s *BlockStore) Mem(hash Hash) (bool, error) {
	return callMem(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_mem(p, hashArg(&hash), e)
	})
}

// Read returns the block distance blocks below hash (0 = the block
// itself), with its metadata if readMetadata, or ErrNotFound when hash is
// unknown or the distance runs past genesis or into history removed by
// rolling GC. During a merge it sees the state before or after it. Errors:
// ErrCorrupted, ErrIO.
func (s *BlockStore) Read(hash Hash, distance uint32, readMetadata bool) (*Block, error) {
	return callOut(s.h, func(p *C.tzs_block_store, out *C.tzs_block, e cErrOut) cStatus {
		return C.tzs_block_store_read(p, hashArg(&hash), C.uint32_t(distance), C.bool(readMetadata), out, e)
	}, takeBlock)
}

// ReadByLevel returns the cemented block at level, or ErrNotFound if that
// level is not cemented (yet, or any more).
func (s *BlockStore) ReadByLevel(level int32, readMetadata bool) (*Block, error) {
	return callOut(s.h, func(p *C.tzs_block_store, out *C.tzs_block, e cErrOut) cStatus {
		return C.tzs_block_store_read_by_level(p, C.int32_t(level), C.bool(readMetadata), out, e)
	}, takeBlock)
}

// Merge starts a background merge: it cements the ancestors of head up to
// the last of chunkEnds (strictly increasing levels, one chunk per
// interval), keeps the blocks above that descend from the new cemented
// top, and applies the history mode's GC. It returns once started; a
// merge already running is waited for first (if it failed, its error is
// returned and no merge starts). Errors: ErrInvalidArgument (no ends, ends
// not increasing, last end above the head), ErrNotFound (head not stored),
// ErrInconsistent, ErrReadOnly, ErrIO.
func (s *BlockStore) Merge(head Hash, chunkEnds []int32) error {
	return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_merge(p, hashArg(&head), endsArg(chunkEnds), C.size_t(len(chunkEnds)), e)
	})
}

// endsArg is the C view of a merge's chunk ends for one call (NULL when
// empty, which the library refuses with ErrInvalidArgument).
func endsArg(chunkEnds []int32) *C.int32_t {
	if len(chunkEnds) == 0 {
		return nil
	}
	return (*C.int32_t)(unsafe.Pointer(&chunkEnds[0]))
}

// Sync brings a read-only handle up to date with the read-write one,
// usually in another process (Octez's Block_store.sync): every block the
// writer stored durably (with flush, or followed by Flush) before the call
// is readable after it, and every merge it completed is seen with its
// savepoint, caboose and history mode; reads meanwhile see the state
// before or after, never a block lost in between. Cheap when nothing
// changed. changed says whether the writer's manifest changed (a merge, a
// savepoint, caboose or mode written). A no-op on a read-write handle.
// Errors: ErrCorrupted, ErrIO; the handle then keeps the state it had.
func (s *BlockStore) Sync() (changed bool, err error) {
	return callOut(s.h, func(p *C.tzs_block_store, out *C.bool, e cErrOut) cStatus {
		return C.tzs_block_store_sync(p, out, e)
	}, func(b *C.bool) bool { return bool(*b) })
}

// AwaitMerge waits for the running merge, if any, and returns its error.
func (s *BlockStore) AwaitMerge() error {
	return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus { return C.tzs_block_store_await_merge(p, e) })
}

// MergeAsync starts a merge as Merge does and returns a channel that
// receives its result once the merge ends (nil, or the error it failed
// with; the store then holds what it held before), then is closed. An
// error starting the merge is received at once. Waiting runs on a
// goroutine, so a caller selects on the channel instead of polling Stats.
func (s *BlockStore) MergeAsync(head Hash, chunkEnds []int32) <-chan error {
	done := make(chan error, 1)
	if err := s.Merge(head, chunkEnds); err != nil {
		done <- err
		close(done)
		return done
	}
	go func() {
		done <- s.AwaitMerge()
		close(done)
	}()
	return done
}

// Stats returns levels, counts, bytes on disk and merge counters.
func (s *BlockStore) Stats() (BlockStoreStats, error) {
	return callOut(s.h, func(p *C.tzs_block_store, out *C.tzs_block_store_stats, e cErrOut) cStatus {
		return C.tzs_block_store_read_stats(p, out, e)
	}, func(out *C.tzs_block_store_stats) BlockStoreStats {
		return BlockStoreStats{
			CementedLowest:  int32(out.cemented_lowest),
			CementedHighest: int32(out.cemented_highest),
			CementedBlocks:  uint64(out.cemented_blocks),
			FloatingBlocks:  uint64(out.floating_blocks),
			BytesOnDisk:     uint64(out.bytes_on_disk),
			MergesDone:      uint64(out.merges_done),
			LastMergeMs:     uint64(out.last_merge_ms),
			Merging:         bool(out.merging),
		}
	})
}

// Check checks every invariant; with repair (read-write handles) it
// removes orphan stores. ErrCorrupted lists the problems left.
func (s *BlockStore) Check(repair bool) error {
	return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_check(p, C.bool(repair), e)
	})
}

// Close releases the handle and its lock, after calls in progress and a
// running merge return. Closing twice is a no-op; calls after Close return
// ErrClosed.
func (s *BlockStore) Close() error {
	s.h.Close()
	return nil
}

// String names the mode as the library's constant does.
func (m HistoryMode) String() string {
	switch m {
	case HistoryArchive:
		return "TZS_HISTORY_ARCHIVE"
	case HistoryFull:
		return "TZS_HISTORY_FULL"
	case HistoryRolling:
		return "TZS_HISTORY_ROLLING"
	}
	return fmt.Sprintf("HistoryMode(%d)", uint32(m))
}
