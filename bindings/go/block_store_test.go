package tzstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// bsBareBlock is blockOf(n) read without metadata.
func bsBareBlock(n int) *Block {
	b := blockOf(n)
	b.Metadata = nil
	return b
}

func testBlockStoreOptions(mode HistoryMode, offset uint32) BlockStoreOptions {
	o := DefaultBlockStoreOptions()
	o.Flags = NoFsync
	o.HistoryMode = mode
	o.HistoryOffset = offset
	o.IndexLogSize = 200
	return o
}

func openBlockStoreT(t *testing.T, dir string, opts BlockStoreOptions) *BlockStore {
	t.Helper()
	s, err := OpenBlockStore(dir, opts)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return s
}

// bsWantBlock fails unless the read returned want.
func bsWantBlock(t *testing.T, what string, got *Block, err error, want *Block) {
	t.Helper()
	if err != nil || got == nil || !sameBlock(got, want) {
		t.Fatalf("%s = %+v, %v; want level %d", what, got, err, want.Level)
	}
}

func TestBlockStoreRoundTrip(t *testing.T) {
	d := DefaultBlockStoreOptions()
	if d.Flags != 0 || d.HistoryMode != HistoryFull || d.HistoryOffset != 1 || d.ZstdLevel <= 0 {
		t.Fatalf("defaults %+v", d)
	}
	dir := filepath.Join(t.TempDir(), "blocks")
	s := openBlockStoreT(t, dir, testBlockStoreOptions(HistoryArchive, 1))
	defer s.Close()
	for i := 0; i < 120; i++ {
		if err := s.Store(blockOf(i)); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	if err := s.Store(blockOf(5)); err != nil {
		t.Fatalf("storing a stored block: %v", err)
	}
	if ok, err := s.Mem(hashOf(119)); !ok || err != nil {
		t.Fatalf("mem = %v, %v", ok, err)
	}
	if ok, err := s.Mem(hashOf(4000)); ok || err != nil {
		t.Fatalf("mem of a missing block = %v, %v", ok, err)
	}
	b, err := s.Read(hashOf(119), 0, true)
	bsWantBlock(t, "read", b, err, blockOf(119))
	b, err = s.Read(hashOf(4), 0, true)
	bsWantBlock(t, "read of empty metadata", b, err, blockOf(4))
	b, err = s.Read(hashOf(3), 0, true)
	bsWantBlock(t, "read of no metadata", b, err, bsBareBlock(3))
	b, err = s.Read(hashOf(119), 37, true)
	bsWantBlock(t, "read at distance 37", b, err, blockOf(82))
	b, err = s.Read(hashOf(119), 37, false)
	bsWantBlock(t, "read without metadata", b, err, bsBareBlock(82))
	b, err = s.Read(hashOf(119), 119, true)
	bsWantBlock(t, "read down to genesis", b, err, blockOf(0))
	if _, err := s.Read(hashOf(119), 120, false); err != ErrNotFound {
		t.Fatalf("read past genesis: %v", err)
	}
	if _, err := s.Read(hashOf(4000), 0, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read of an unknown hash: %v", err)
	}
	if _, err := s.ReadByLevel(10, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read_by_level before any merge: %v", err)
	}

	if err := s.Merge(hashOf(119), []int32{19, 39, 59, 79}); err != nil {
		t.Fatal(err)
	}
	for i := 120; i < 140; i++ {
		if err := s.Store(blockOf(i)); err != nil {
			t.Fatalf("store during a merge: %v", err)
		}
	}
	if err := s.AwaitMerge(); err != nil {
		t.Fatal(err)
	}
	if err := s.AwaitMerge(); err != nil {
		t.Fatal(err)
	}
	// 60 above the cemented top and the top itself, kept with its metadata.
	st, err := s.Stats()
	if err != nil || st.CementedLowest != 0 || st.CementedHighest != 79 || st.CementedBlocks != 80 ||
		st.FloatingBlocks != 61 || st.MergesDone != 1 || st.Merging || st.BytesOnDisk == 0 {
		t.Fatalf("stats = %+v, %v", st, err)
	}
	for _, n := range []int{10, 4, 3} {
		b, err = s.ReadByLevel(int32(n), true)
		bsWantBlock(t, fmt.Sprintf("read_by_level %d", n), b, err, blockOf(n))
	}
	b, err = s.ReadByLevel(10, false)
	bsWantBlock(t, "read_by_level without metadata", b, err, bsBareBlock(10))
	if _, err := s.ReadByLevel(90, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read_by_level of a floating level: %v", err)
	}
	b, err = s.Read(hashOf(10), 0, true)
	bsWantBlock(t, "read of a cemented block", b, err, blockOf(10))
	b, err = s.Read(hashOf(139), 130, true)
	bsWantBlock(t, "read across the boundary", b, err, blockOf(9))
	if err := s.Check(false); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(true); err != nil {
		t.Fatal(err)
	}
}

func TestBlockStoreErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	s := openBlockStoreT(t, dir, testBlockStoreOptions(HistoryArchive, 1))
	for i := 0; i < 30; i++ {
		if err := s.Store(blockOf(i)); err != nil {
			t.Fatal(err)
		}
	}
	orphan := blockOf(500)
	orphan.Predecessor = hashOf(400)
	err := s.Store(orphan)
	var e *Error
	if !errors.Is(err, ErrInconsistent) || !errors.As(err, &e) || !strings.Contains(e.Message, "predecessor") {
		t.Fatalf("store of an orphan: %v", err)
	}
	if _, err := OpenBlockStore(dir, testBlockStoreOptions(HistoryArchive, 1)); !errors.Is(err, ErrLocked) {
		t.Fatalf("second read-write open: %v", err)
	}
	if err := s.Merge(hashOf(29), []int32{19, 9}); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("merge with ends not increasing: %v", err)
	}
	if err := s.Merge(hashOf(29), nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("merge without ends: %v", err)
	}
	if err := s.Merge(hashOf(4000), []int32{9}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("merge of an unknown head: %v", err)
	}
	bad := testBlockStoreOptions(7, 1)
	if _, err := OpenBlockStore(dir+"-bad", bad); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("open with an unknown history mode: %v", err)
	}
	ro := DefaultBlockStoreOptions()
	ro.Flags = ReadOnly
	if _, err := OpenBlockStore(dir+"-missing", ro); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read-only open of a missing store: %v", err)
	}
	if _, err := OpenBlockStore(dir+"\x00x", ro); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("open of a path with a NUL byte: %v", err)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Read(hashOf(1), 0, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := s.Stats(); !errors.Is(err, ErrClosed) {
		t.Fatalf("stats after close: %v", err)
	}
	r := openBlockStoreT(t, dir, ro)
	defer r.Close()
	b, err := r.Read(hashOf(29), 0, true)
	bsWantBlock(t, "read-only read", b, err, blockOf(29))
	if err := r.Store(blockOf(30)); !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), "TZS_READ_ONLY") {
		t.Fatalf("store through a read-only handle: %v", err)
	}
}

// Rolling history keeps only the last HistoryOffset cemented chunks.
func TestBlockStoreRolling(t *testing.T) {
	s := openBlockStoreT(t, filepath.Join(t.TempDir(), "rolling"), testBlockStoreOptions(HistoryRolling, 1))
	defer s.Close()
	for i := 0; i < 100; i++ {
		if err := s.Store(blockOf(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Merge(hashOf(99), []int32{19, 39, 59, 79}); err != nil {
		t.Fatal(err)
	}
	if err := s.AwaitMerge(); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats()
	if err != nil || st.CementedLowest != 60 || st.CementedHighest != 79 || st.CementedBlocks != 20 {
		t.Fatalf("stats = %+v, %v", st, err)
	}
	if _, err := s.ReadByLevel(10, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read_by_level of a dropped level: %v", err)
	}
	if _, err := s.Read(hashOf(10), 0, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read of a dropped block: %v", err)
	}
	if _, err := s.Read(hashOf(99), 95, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read into dropped history: %v", err)
	}
	b, err := s.Read(hashOf(99), 30, true)
	bsWantBlock(t, "read of a kept ancestor", b, err, blockOf(69))
	if err := s.Check(false); err != nil {
		t.Fatal(err)
	}
}

// One goroutine stores a growing chain, four read, and the test goroutine
// runs merges meanwhile: every block stored before a read is found,
// identical (archive mode keeps everything).
func TestBlockStoreConcurrentDuringMerges(t *testing.T) {
	s := openBlockStoreT(t, filepath.Join(t.TempDir(), "threads"), testBlockStoreOptions(HistoryArchive, 1))
	defer s.Close()
	const total = 600
	var stored, reads atomic.Int64
	var stop atomic.Bool
	errs := make(chan error, 16)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < total; i++ {
			if err := s.Store(blockOf(i)); err != nil {
				errs <- fmt.Errorf("store %d: %w", i, err)
				return
			}
			stored.Store(int64(i + 1))
		}
	}()
	var readers sync.WaitGroup
	for r := 0; r < 4; r++ {
		readers.Add(1)
		go func(r int) {
			defer readers.Done()
			x := uint32(17 + r)
			for !stop.Load() {
				n := int(stored.Load())
				if n == 0 {
					runtime.Gosched()
					continue
				}
				x = x*1103515245 + 12345
				i := int(x>>8) % n
				meta := r%2 == 1
				want := bsBareBlock(i)
				if meta {
					want = blockOf(i)
				}
				b, err := s.Read(hashOf(i), 0, meta)
				if err != nil || !sameBlock(b, want) {
					errs <- fmt.Errorf("read %d: %+v, %v", i, b, err)
					return
				}
				b, err = s.Read(hashOf(i), uint32(i/2), false)
				if err != nil || !sameBlock(b, bsBareBlock(i-i/2)) {
					errs <- fmt.Errorf("read %d at distance %d: %+v, %v", i, i/2, b, err)
					return
				}
				reads.Add(1)
			}
		}(r)
	}
	merges := 0
	for end := 99; end < total-100; end += 100 {
		for stored.Load() < int64(end+50) {
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
				runtime.Gosched()
			}
		}
		if err := s.Merge(hashOf(end+40), []int32{int32(end)}); err != nil {
			t.Fatal(err)
		}
		merges++
	}
	if err := s.AwaitMerge(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for reads.Load() < 100 && len(errs) == 0 {
		runtime.Gosched()
	}
	stop.Store(true)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// The cemented top is also kept floating (with its metadata): counted twice.
	st, err := s.Stats()
	if err != nil || st.MergesDone != uint64(merges) || st.CementedHighest != int32(99+100*(merges-1)) ||
		st.CementedBlocks+st.FloatingBlocks != total+1 {
		t.Fatalf("stats = %+v, %v after %d merges", st, err, merges)
	}
	if err := s.Check(false); err != nil {
		t.Fatal(err)
	}
}

func TestBlockStoreUnflushedStoresThenFlush(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	s := openBlockStoreT(t, dir, testBlockStoreOptions(HistoryArchive, 1))
	for i := 0; i < 50; i++ {
		if err := s.StoreWith(blockOf(i), false); err != nil {
			t.Fatalf("store %d without flush: %v", i, err)
		}
	}
	// Readable at once, before any flush.
	b, err := s.Read(hashOf(49), 0, true)
	bsWantBlock(t, "read before the flush", b, err, blockOf(49))
	if err := s.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ro := testBlockStoreOptions(HistoryArchive, 1)
	ro.Flags |= ReadOnly
	r := openBlockStoreT(t, dir, ro)
	defer r.Close()
	for i := 0; i < 50; i++ {
		b, err := r.Read(hashOf(i), 0, true)
		bsWantBlock(t, fmt.Sprintf("read %d after reopen", i), b, err, blockOf(i))
	}
	if err := r.Flush(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("flush of a read-only handle = %v, want ErrReadOnly", err)
	}
	if err := r.StoreWith(blockOf(50), false); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("store on a read-only handle = %v, want ErrReadOnly", err)
	}
}

func TestBlockStoreMergeAsync(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	s := openBlockStoreT(t, dir, testBlockStoreOptions(HistoryArchive, 1))
	defer s.Close()
	for i := 0; i < 60; i++ {
		if err := s.Store(blockOf(i)); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	if err := <-s.MergeAsync(hashOf(59), []int32{19, 39}); err != nil {
		t.Fatalf("merge: %v", err)
	}
	if st, err := s.Stats(); err != nil || st.CementedHighest != 39 || st.Merging {
		t.Fatalf("after the merge: %+v, %v", st, err)
	}
	// An error starting the merge arrives at once.
	if err := <-s.MergeAsync(hashOf(4000), []int32{49}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("merge of an unknown head = %v, want ErrNotFound", err)
	}
}

// A read-only handle follows the read-write one through Sync: blocks
// stored after its last Sync are unseen until the next, and after a merge
// the cemented blocks are readable, by hash and by level.
func TestBlockStoreReadOnlySync(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	w := openBlockStoreT(t, dir, testBlockStoreOptions(HistoryArchive, 1))
	defer w.Close()
	for i := 0; i < 100; i++ {
		if err := w.Store(blockOf(i)); err != nil {
			t.Fatal(err)
		}
	}
	roOpts := testBlockStoreOptions(HistoryArchive, 1)
	roOpts.Flags |= ReadOnly
	r := openBlockStoreT(t, dir, roOpts)
	defer r.Close()
	wantRead := func(what string, n int) {
		t.Helper()
		b, err := r.Read(hashOf(n), 0, true)
		bsWantBlock(t, what, b, err, blockOf(n))
	}
	wantRead("read-only read", 99)
	// The first Sync after the open may report a change: the open does not
	// record which manifest it loaded, so that Sync reloads it.
	if _, err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	if changed, err := r.Sync(); changed || err != nil {
		t.Fatalf("Sync with nothing new = %v, %v", changed, err)
	}
	if changed, err := w.Sync(); changed || err != nil {
		t.Fatalf("Sync of the read-write handle = %v, %v", changed, err)
	}
	if err := r.Store(blockOf(100)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only store: %v", err)
	}

	for i := 100; i < 150; i++ {
		if err := w.StoreWith(blockOf(i), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(hashOf(120), 0, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("block stored after the last Sync, read before the next: %v", err)
	}
	if _, err := r.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := 100; i < 150; i++ {
		wantRead("after Sync", i)
	}

	if err := w.Merge(hashOf(149), []int32{19, 39, 59, 79, 99, 119, 139}); err != nil {
		t.Fatal(err)
	}
	if err := w.AwaitMerge(); err != nil {
		t.Fatal(err)
	}
	// Before its Sync the reader still serves its state from before the
	// merge: nothing it could read is lost.
	wantRead("after the writer's merge, before Sync", 50)
	if _, err := r.ReadByLevel(50, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadByLevel before the reader saw the merge: %v", err)
	}
	if changed, err := r.Sync(); !changed || err != nil {
		t.Fatalf("Sync after a merge = %v, %v", changed, err)
	}
	for i := 0; i < 150; i++ {
		wantRead("after the merge and Sync", i)
	}
	b, err := r.ReadByLevel(50, true)
	bsWantBlock(t, "cemented block by level", b, err, blockOf(50))
	st, err := r.Stats()
	if err != nil || st.CementedLowest != 0 || st.CementedHighest != 139 {
		t.Fatalf("read-only stats after Sync = %+v, %v", st, err)
	}
	if changed, err := r.Sync(); changed || err != nil {
		t.Fatalf("second Sync = %v, %v", changed, err)
	}
	r.Close()
	if _, err := r.Sync(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Sync after Close: %v", err)
	}
}

// Blocks stored with a context (every fifth without: zeros) keep it
// through a merge that cements levels 0..40 (ends 20 and 40): it reads back
// from the cemented records and the floating index alike.
func TestBlockStoreResultingContextHash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	s := openBlockStoreT(t, dir, testBlockStoreOptions(HistoryArchive, 1))
	defer s.Close()
	want := func(i int) Hash {
		if i%5 == 4 {
			return Hash{}
		}
		return ctxOf(i)
	}
	for i := 0; i <= 60; i++ {
		var err error
		if i%5 == 4 {
			err = s.StoreWith(blockOf(i), false)
		} else {
			err = s.StoreWithContext(blockOf(i), ctxOf(i), i == 60)
		}
		if err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
	check := func(what string) {
		t.Helper()
		for i := 0; i <= 60; i++ {
			if got, err := s.ResultingContextHash(hashOf(i)); got != want(i) || err != nil {
				t.Fatalf("%s: context of %d = %x, %v; want %x", what, i, got, err, want(i))
			}
		}
		if _, err := s.ResultingContextHash(hashOf(61)); err != ErrNotFound {
			t.Fatalf("%s: context of a missing block: %v", what, err)
		}
	}
	check("before the merge")
	if err := s.Merge(hashOf(60), []int32{20, 40}); err != nil {
		t.Fatal(err)
	}
	if err := s.AwaitMerge(); err != nil {
		t.Fatal(err)
	}
	if st, err := s.Stats(); err != nil || st.CementedLowest != 0 || st.CementedHighest != 40 {
		t.Fatalf("stats after the merge = %+v, %v", st, err)
	}
	check("after the merge")
	b, err := s.ReadByLevel(30, true)
	bsWantBlock(t, "cemented block stored with a context", b, err, blockOf(30))
	// Stores after the merge record contexts too.
	if err := s.StoreWithContext(blockOf(61), ctxOf(61), true); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ResultingContextHash(hashOf(61)); got != ctxOf(61) || err != nil {
		t.Fatalf("context of 61 = %x, %v", got, err)
	}
}
