package tzstore

/*
#include "tzstore.h"
#include "block_arg.h"

static tzs_status tzs_go_block_store_create(const char *dir, const tzs_block_store_options *opts,
    const uint8_t *hash, int32_t level, const uint8_t *pred, uint8_t *contents,
    size_t contents_len, bool has_metadata, uint8_t *metadata, size_t metadata_len,
    tzs_block_store **out, tzs_error **err) {
  tzs_block g = tzs_go_block(hash, level, pred, contents, contents_len, has_metadata, metadata,
      metadata_len);
  return tzs_block_store_create(dir, opts, &g, out, err);
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// The block store's chain bookkeeping (Octez's Block_store): a genesis
// given at creation, the savepoint and caboose, merges that keep the
// head's last preserved blocks with their metadata, the merge status and
// history-mode switches.

// BlockDescr names a block by hash and level (tzs_block_descr, Octez's
// block descriptor): the genesis, savepoint and caboose of a block store.
type BlockDescr struct {
	Hash  Hash
	Level int32
}

// MergeState says where a block store's background merge stands
// (tzs_merge_state).
type MergeState uint32

const (
	// MergeNotRunning: no merge runs; the last one of this handle, if any,
	// succeeded.
	MergeNotRunning MergeState = C.TZS_MERGE_NOT_RUNNING
	// MergeRunning: a merge runs.
	MergeRunning MergeState = C.TZS_MERGE_RUNNING
	// MergeFailed: the last merge of this handle failed; the store holds
	// what it held before it.
	MergeFailed MergeState = C.TZS_MERGE_FAILED
)

// MergeStatus is the result of BlockStore.MergeStatus (Octez's
// get_merge_status).
type MergeStatus struct {
	State MergeState
	// Failure is the failed merge's error when State is MergeFailed (an
	// *Error: errors.Is matches its status), nil otherwise.
	Failure error
}

// CreateBlockStore creates a block store in dir holding genesis (its first
// block, stored durably), as Octez's Block_store.create ~genesis_block: the
// genesis, savepoint and caboose are then genesis. opts must not ask for
// ReadOnly. Errors: ErrInvalidArgument (dir already holds a block store,
// read-only or invalid options, a nil genesis), ErrLocked, ErrCorrupted, ErrNoSpace, ErrIO.
func CreateBlockStore(dir string, opts BlockStoreOptions, genesis *Block) (*BlockStore, error) {
	if genesis == nil {
		return nil, &Error{Status: StatusInvalidArgument, Message: "no genesis block"}
	}
	o := opts.c()
	g := genesis
	contents, contentsLen := bytesArg(g.Contents)
	metadata, metadataLen := bytesArg(g.Metadata)
	h, err := openHandle(dir, "block store", func(cdir *C.char, p **C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_go_block_store_create(cdir, &o, hashArg(&g.Hash), C.int32_t(g.Level), hashArg(&g.Predecessor),
			contents, contentsLen, C.bool(g.Metadata != nil), metadata, metadataLen, p, e)
	}, closeBlockStore)
	if err != nil {
		return nil, err
	}
	return &BlockStore{h: h}, nil
}

// LoadBlockStore opens the existing block store in dir as OpenBlockStore
// does and checks that its genesis is genesisHash (Octez's
// Block_store.load). Errors: those of OpenBlockStore; ErrNotFound (dir
// holds no block store), ErrInconsistent (its genesis is another block).
func LoadBlockStore(dir string, opts BlockStoreOptions, genesisHash Hash) (*BlockStore, error) {
	o := opts.c()
	h, err := openHandle(dir, "block store", func(cdir *C.char, p **C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_load(cdir, &o, hashArg(&genesisHash), p, e)
	}, closeBlockStore)
	if err != nil {
		return nil, err
	}
	return &BlockStore{h: h}, nil
}

// descr reads one of the store's recorded blocks.
func (s *BlockStore) descr(f func(p *C.tzs_block_store, out *C.tzs_block_descr, e cErrOut) cStatus) (BlockDescr, error) {
	return callOut(s.h, f, func(out *C.tzs_block_descr) BlockDescr {
		d := BlockDescr{Level: int32(out.level)}
		copy(d.Hash[:], unsafe.Slice((*byte)(unsafe.Pointer(&out.hash[0])), len(d.Hash)))
		return d
	})
}

// Genesis returns the store's genesis block (recorded when its first block
// was stored), or ErrNotFound while the store holds no block (or after a
// repair rebuilt its manifest).
func (s *BlockStore) Genesis() (BlockDescr, error) {
	return s.descr(func(p *C.tzs_block_store, out *C.tzs_block_descr, e cErrOut) cStatus {
		return C.tzs_block_store_genesis(p, out, e)
	})
}

// Savepoint returns the lowest block stored with its metadata, or
// ErrNotFound while the store holds no block. Merges move it by the history
// mode (Octez's rules); WriteSavepoint sets it.
func (s *BlockStore) Savepoint() (BlockDescr, error) {
	return s.descr(func(p *C.tzs_block_store, out *C.tzs_block_descr, e cErrOut) cStatus {
		return C.tzs_block_store_savepoint(p, out, e)
	})
}

// Caboose returns the lowest block stored, or ErrNotFound while the store
// holds no block. Only rolling merges move it; WriteCaboose sets it.
func (s *BlockStore) Caboose() (BlockDescr, error) {
	return s.descr(func(p *C.tzs_block_store, out *C.tzs_block_descr, e cErrOut) cStatus {
		return C.tzs_block_store_caboose(p, out, e)
	})
}

func (d BlockDescr) c() C.tzs_block_descr {
	var out C.tzs_block_descr
	for i, b := range d.Hash {
		out.hash[i] = C.uint8_t(b)
	}
	out.level = C.int32_t(d.Level)
	return out
}

// WriteSavepoint sets the savepoint, durably on return (a crash leaves the
// old or the new value). Errors: ErrInvalidArgument (below the caboose or
// the genesis), ErrNotFound (the block is not stored), ErrInconsistent (it
// is stored at another level), ErrReadOnly, ErrNoSpace, ErrIO.
func (s *BlockStore) WriteSavepoint(d BlockDescr) error {
	cd := d.c()
	return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_write_savepoint(p, &cd, e)
	})
}

// WriteCaboose sets the caboose, durably on return. Errors:
// ErrInvalidArgument (above the savepoint or below the genesis),
// ErrNotFound, ErrInconsistent, ErrReadOnly, ErrNoSpace, ErrIO.
func (s *BlockStore) WriteCaboose(d BlockDescr) error {
	cd := d.c()
	return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_write_caboose(p, &cd, e)
	})
}

// MergePreserving starts a merge as Merge does, keeping in the floating
// store, with their metadata, the new cemented top (the last of chunkEnds:
// the head's last preserved block) and up to maxOpTTL of its ancestors, as
// Octez's merge_stores does; reads take those floating copies. The merge
// moves the savepoint and caboose by the history mode (full or rolling
// with offset 0: to the lowest preserved block), and rolling 0 cements
// nothing. Errors as Merge.
func (s *BlockStore) MergePreserving(head Hash, chunkEnds []int32, maxOpTTL uint32) error {
	return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_merge_preserving(p, hashArg(&head), endsArg(chunkEnds), C.size_t(len(chunkEnds)),
			C.uint32_t(maxOpTTL), e)
	})
}

// MergeStatus says, without waiting, whether a merge runs or the last one
// of this handle failed (until the next merge starts), with its error.
func (s *BlockStore) MergeStatus() (MergeStatus, error) {
	var status MergeStatus
	err := call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		var state C.tzs_merge_state
		var failure *C.tzs_error
		st := C.tzs_block_store_merge_status(p, &state, &failure, e)
		if st == C.TZS_OK {
			status.State = MergeState(state)
			if failure != nil {
				status.Failure = check(C.tzs_error_code(failure), failure)
			}
		}
		return st
	})
	return status, err
}

// History returns the store's history mode and offset (persisted; changed
// only by SwitchHistoryMode).
func (s *BlockStore) History() (HistoryMode, uint32, error) {
	var mode C.tzs_history_mode
	var offset C.uint32_t
	err := call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_history(p, &mode, &offset, e)
	})
	return HistoryMode(mode), uint32(offset), err
}

// SwitchHistoryMode switches the store to mode with offset by Octez's
// rules: archive may become full or rolling, full may become full or
// rolling, rolling may change its offset; switching to archive from
// another mode, or from rolling to full, is ErrInvalidArgument (the
// message names both modes). head is the node's head: the blocks kept are
// its last preserved block (the last merge's top) and maxOpTTL ancestors.
// The savepoint and caboose move as Octez moves them; mode, offset and
// marks are written in one durable step, then the GC for the new mode runs
// before this returns. Waits for a running merge first. Errors:
// ErrInvalidArgument (also an unknown mode, offset above 1000),
// ErrNotFound (head not stored), ErrReadOnly, ErrCorrupted (the GC met
// damage; the switch itself is done), ErrNoSpace, ErrIO.
func (s *BlockStore) SwitchHistoryMode(head Hash, mode HistoryMode, offset, maxOpTTL uint32) error {
	return call(s.h, func(p *C.tzs_block_store, e cErrOut) cStatus {
		return C.tzs_block_store_switch_history_mode(p, hashArg(&head), C.tzs_history_mode(mode),
			C.uint32_t(offset), C.uint32_t(maxOpTTL), e)
	})
}

// String names the state as the library's constant does.
func (m MergeState) String() string {
	switch m {
	case MergeNotRunning:
		return "TZS_MERGE_NOT_RUNNING"
	case MergeRunning:
		return "TZS_MERGE_RUNNING"
	case MergeFailed:
		return "TZS_MERGE_FAILED"
	}
	return fmt.Sprintf("MergeState(%d)", uint32(m))
}
