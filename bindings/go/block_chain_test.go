package tzstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The block store's chain bookkeeping, after Octez's test_block_store.ml
// (test_full_0_merge, test_rolling_0_merge): ten 20-block cycles (levels
// 0..200, genesis 0) merged with chunk ends 20..180 and max_op_ttl 1, so
// the blocks from 179 up are kept with their metadata.

// chainBlock is block n of a chain where every block has the metadata
// "metadata n", so that a read tells which blocks kept it.
func chainBlock(n int) *Block {
	return &Block{
		Hash:        hashOf(n),
		Level:       int32(n),
		Predecessor: hashOf(max0(n - 1)),
		Contents:    []byte(fmt.Sprintf("contents %d", n)),
		Metadata:    []byte(fmt.Sprintf("metadata %d", n)),
	}
}

// Presence of a block as a read shows it.
const (
	chainAbsent = iota
	chainBare
	chainWithMetadata
)

// chainPresence reads block n with its metadata; t fails on anything else
// than absence or the block stored (with or without its metadata).
func chainPresence(t *testing.T, s *BlockStore, n int) int {
	t.Helper()
	b, err := s.Read(hashOf(n), 0, true)
	if errors.Is(err, ErrNotFound) {
		return chainAbsent
	}
	want := chainBlock(n)
	if err != nil || b.Level != want.Level || string(b.Contents) != string(want.Contents) {
		t.Fatalf("read %d = %+v, %v", n, b, err)
	}
	if b.Metadata == nil {
		return chainBare
	}
	if string(b.Metadata) != string(want.Metadata) {
		t.Fatalf("read %d: metadata %q", n, b.Metadata)
	}
	return chainWithMetadata
}

// wantChain fails unless levels 0..=200 read as `below` under the lowest
// preserved block (179) and with their metadata from it up.
func wantChain(t *testing.T, s *BlockStore, below int) {
	t.Helper()
	for n := 0; n <= 200; n++ {
		want := chainWithMetadata
		if n < 179 {
			want = below
		}
		if got := chainPresence(t, s, n); got != want {
			t.Fatalf("block %d: presence %d, want %d", n, got, want)
		}
	}
}

func chainOptions(mode HistoryMode) BlockStoreOptions {
	return testBlockStoreOptions(mode, 0)
}

// mergedChain creates a store of levels 0..=200 in dir and merges ten
// cycles preserving one block below the last chunk end.
func mergedChain(t *testing.T, dir string, mode HistoryMode) *BlockStore {
	t.Helper()
	s, err := CreateBlockStore(dir, chainOptions(mode), chainBlock(0))
	if err != nil {
		t.Fatalf("create %s: %v", dir, err)
	}
	for n := 1; n <= 200; n++ {
		if err := s.StoreWith(chainBlock(n), false); err != nil {
			t.Fatalf("store %d: %v", n, err)
		}
	}
	ends := []int32{}
	for e := int32(20); e <= 180; e += 20 {
		ends = append(ends, e)
	}
	if err := s.MergePreserving(hashOf(200), ends, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.AwaitMerge(); err != nil {
		t.Fatal(err)
	}
	return s
}

func wantDescr(t *testing.T, what string, get func() (BlockDescr, error), level int) {
	t.Helper()
	d, err := get()
	if err != nil || d != (BlockDescr{Hash: hashOf(level), Level: int32(level)}) {
		t.Fatalf("%s = %+v, %v; want level %d", what, d, err, level)
	}
}

func TestBlockChainFull0Merge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "full")
	s := mergedChain(t, dir, HistoryFull)
	defer s.Close()
	// Every block kept, metadata only from the lowest preserved block up.
	wantChain(t, s, chainBare)
	wantDescr(t, "savepoint", s.Savepoint, 179)
	wantDescr(t, "caboose", s.Caboose, 0)
	wantDescr(t, "genesis", s.Genesis, 0)
	// The cemented top, cemented without metadata, reads by level with it.
	b, err := s.ReadByLevel(180, true)
	if err != nil || string(b.Metadata) != "metadata 180" {
		t.Fatalf("read_by_level 180 = %+v, %v", b, err)
	}
	st, err := s.MergeStatus()
	if err != nil || st.State != MergeNotRunning || st.Failure != nil {
		t.Fatalf("merge status after a merge = %+v, %v", st, err)
	}
	if mode, offset, err := s.History(); mode != HistoryFull || offset != 0 || err != nil {
		t.Fatalf("history = %v %d, %v", mode, offset, err)
	}
}

func TestBlockChainRolling0Merge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rolling")
	s := mergedChain(t, dir, HistoryRolling)
	defer s.Close()
	wantChain(t, s, chainAbsent)
	wantDescr(t, "savepoint", s.Savepoint, 179)
	wantDescr(t, "caboose", s.Caboose, 179)
	wantDescr(t, "genesis", s.Genesis, 0)
	// Rolling 0 cements nothing, as in Octez.
	st, err := s.Stats()
	if err != nil || st.CementedBlocks != 0 {
		t.Fatalf("stats = %+v, %v", st, err)
	}
}

func TestBlockChainCreateLoad(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "chain")
	s, err := CreateBlockStore(dir, chainOptions(HistoryArchive), chainBlock(0))
	if err != nil {
		t.Fatal(err)
	}
	wantDescr(t, "genesis", s.Genesis, 0)
	wantDescr(t, "savepoint", s.Savepoint, 0)
	wantDescr(t, "caboose", s.Caboose, 0)
	s.Close()
	if _, err := s.Genesis(); !errors.Is(err, ErrClosed) {
		t.Fatalf("genesis after close: %v", err)
	}

	// create refuses a populated directory, read-only options and no genesis.
	if _, err := CreateBlockStore(dir, chainOptions(HistoryArchive), chainBlock(0)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("create over a store: %v", err)
	}
	ro := chainOptions(HistoryArchive)
	ro.Flags |= ReadOnly
	if _, err := CreateBlockStore(filepath.Join(root, "ro"), ro, chainBlock(0)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("read-only create: %v", err)
	}
	if _, err := CreateBlockStore(filepath.Join(root, "nil"), chainOptions(HistoryArchive), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("create without genesis: %v", err)
	}
	// load checks the genesis.
	if _, err := LoadBlockStore(dir, DefaultBlockStoreOptions(), hashOf(7)); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("load with another genesis: %v", err)
	}
	if _, err := LoadBlockStore(filepath.Join(root, "missing"), DefaultBlockStoreOptions(), hashOf(0)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("load of a missing store: %v", err)
	}
	s, err = LoadBlockStore(dir, DefaultBlockStoreOptions(), hashOf(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if mode, _, err := s.History(); mode != HistoryArchive || err != nil {
		t.Fatalf("history of the loaded store = %v, %v", mode, err)
	}

	// An opened store with no block has no genesis, savepoint or caboose.
	empty := openBlockStoreT(t, filepath.Join(root, "empty"), chainOptions(HistoryArchive))
	defer empty.Close()
	for what, get := range map[string]func() (BlockDescr, error){
		"genesis": empty.Genesis, "savepoint": empty.Savepoint, "caboose": empty.Caboose,
	} {
		if _, err := get(); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s of an empty store: %v", what, err)
		}
	}
}

func TestBlockChainSavepointCaboose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "full")
	s := mergedChain(t, dir, HistoryFull)
	at := func(n int) BlockDescr { return BlockDescr{Hash: hashOf(n), Level: int32(n)} }
	if err := s.WriteCaboose(at(190)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("caboose above the savepoint: %v", err)
	}
	if err := s.WriteSavepoint(at(190)); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteSavepoint(BlockDescr{Hash: hashOf(190), Level: 191}); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("savepoint at the wrong level: %v", err)
	}
	if err := s.WriteSavepoint(at(999)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("savepoint on a missing block: %v", err)
	}
	if err := s.WriteCaboose(at(10)); err != nil {
		t.Fatal(err)
	}
	wantDescr(t, "savepoint", s.Savepoint, 190)
	wantDescr(t, "caboose", s.Caboose, 10)
	if err := s.WriteSavepoint(at(5)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("savepoint below the caboose: %v", err)
	}
	s.Close()
	// Durable: a load sees them.
	s, err := LoadBlockStore(dir, DefaultBlockStoreOptions(), hashOf(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	wantDescr(t, "savepoint after load", s.Savepoint, 190)
	wantDescr(t, "caboose after load", s.Caboose, 10)

	ro := DefaultBlockStoreOptions()
	ro.Flags = ReadOnly
	r, err := OpenBlockStore(dir, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.WriteSavepoint(at(195)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("savepoint on a read-only handle: %v", err)
	}
}

func TestBlockChainHistorySwitch(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "full")
	s := mergedChain(t, dir, HistoryFull)
	defer s.Close()
	// Refused: to archive (the message names both modes), an unknown mode,
	// an unknown head.
	err := s.SwitchHistoryMode(hashOf(200), HistoryArchive, 0, 1)
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "full 0") {
		t.Fatalf("full -> archive: %v", err)
	}
	if err := s.SwitchHistoryMode(hashOf(200), HistoryMode(7), 0, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("switch to mode 7: %v", err)
	}
	if err := s.SwitchHistoryMode(hashOf(999), HistoryRolling, 0, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("switch with an unknown head: %v", err)
	}
	if mode, offset, err := s.History(); mode != HistoryFull || offset != 0 || err != nil {
		t.Fatalf("history after refused switches = %v %d, %v", mode, offset, err)
	}
	// Accepted: full 0 -> rolling 0 keeps the preserved blocks and above.
	if err := s.SwitchHistoryMode(hashOf(200), HistoryRolling, 0, 1); err != nil {
		t.Fatal(err)
	}
	if mode, offset, err := s.History(); mode != HistoryRolling || offset != 0 || err != nil {
		t.Fatalf("history after the switch = %v %d, %v", mode, offset, err)
	}
	wantDescr(t, "caboose", s.Caboose, 179)
	wantChain(t, s, chainAbsent)
	// And rolling -> full is refused.
	if err := s.SwitchHistoryMode(hashOf(200), HistoryFull, 1, 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("rolling -> full: %v", err)
	}
	s.Close()
	// Persisted.
	s, err = LoadBlockStore(dir, DefaultBlockStoreOptions(), hashOf(0))
	if err != nil {
		t.Fatal(err)
	}
	if mode, offset, err := s.History(); mode != HistoryRolling || offset != 0 || err != nil {
		t.Fatalf("history after load = %v %d, %v", mode, offset, err)
	}
}

// newestFloatingFile is the RW_floating_block_store file of the floating
// store with the highest id under dir.
func newestFloatingFile(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "floating"))
	if err != nil {
		t.Fatal(err)
	}
	best := -1
	for _, e := range entries {
		if id, err := strconv.Atoi(e.Name()); err == nil && e.IsDir() && id > best {
			if _, err := os.Stat(filepath.Join(dir, "floating", e.Name(), "RW_floating_block_store")); err == nil {
				best = id
			}
		}
	}
	if best < 0 {
		t.Fatalf("no floating store under %s", dir)
	}
	return filepath.Join(dir, "floating", strconv.Itoa(best), "RW_floating_block_store")
}

func TestBlockChainFailedMergeStatus(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rolling")
	s := mergedChain(t, dir, HistoryRolling)
	defer s.Close()
	for n := 201; n <= 240; n++ {
		if err := s.Store(chainBlock(n)); err != nil {
			t.Fatal(err)
		}
	}
	// Damage an entry the next merge reads.
	path := newestFloatingFile(t, dir)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, info.Size()-200); err != nil {
		t.Fatal(err)
	}
	f.Close()

	if err := s.MergePreserving(hashOf(240), []int32{220}, 1); err != nil {
		t.Fatal(err)
	}
	mergeErr := s.AwaitMerge()
	if !errors.Is(mergeErr, ErrCorrupted) {
		t.Fatalf("merge over a damaged entry: %v", mergeErr)
	}
	st, err := s.MergeStatus()
	if err != nil || st.State != MergeFailed || !errors.Is(st.Failure, ErrCorrupted) ||
		st.Failure.Error() != mergeErr.Error() {
		t.Fatalf("merge status = %+v, %v; merge failed with %v", st, err, mergeErr)
	}
	if st.State.String() != "TZS_MERGE_FAILED" {
		t.Fatalf("state name %q", st.State)
	}
	// The store holds what it held before.
	wantDescr(t, "caboose after the failed merge", s.Caboose, 179)
	if ok, err := s.Mem(hashOf(240)); !ok || err != nil {
		t.Fatalf("mem 240 = %v, %v", ok, err)
	}
}
