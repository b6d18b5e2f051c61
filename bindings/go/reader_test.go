package tzstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newReaderT(t *testing.T) *Reader {
	t.Helper()
	r, err := NewReader()
	if err != nil {
		t.Fatalf("NewReader: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// viewIs reports whether v shows want: hashes, level, contents, and
// metadata present (non-nil, possibly empty) exactly when want has some.
func viewIs(v BlockView, want *Block) bool {
	return sameBlock(v.Copy(), want) && v.HasMetadata == (want.Metadata != nil) &&
		(v.Metadata == nil) == (want.Metadata == nil)
}

// wantView fails unless the read returned a view of want.
func wantView(t *testing.T, what string, v BlockView, err error, want *Block) {
	t.Helper()
	if err != nil || !viewIs(v, want) {
		t.Fatalf("%s = %+v, %v; want %+v", what, v.Copy(), err, want)
	}
}

// reopenBlockStoreT closes s and opens its directory again, so that the
// floating blocks stored so far are read from the file's mapping rather
// than copied from its unmapped tail.
func reopenBlockStoreT(t *testing.T, s *BlockStore, dir string, opts BlockStoreOptions) *BlockStore {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return openBlockStoreT(t, dir, opts)
}

func storeChainT(t *testing.T, s *BlockStore, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := s.StoreWith(blockOf(i), false); err != nil {
			t.Fatalf("store %d: %v", i, err)
		}
	}
}

func mergeT(t *testing.T, s *BlockStore, head int, ends ...int32) {
	t.Helper()
	if err := s.Merge(hashOf(head), ends); err != nil {
		t.Fatalf("merge to %v: %v", ends, err)
	}
	if err := s.AwaitMerge(); err != nil {
		t.Fatalf("merge to %v: %v", ends, err)
	}
	// Lets the store delete what the merge retired.
	if _, err := s.Stats(); err != nil {
		t.Fatal(err)
	}
}

// filesUnder lists the files under dir, skipping those deleted during the
// walk (the store deletes retired files in the background).
func filesUnder(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if !info.IsDir() {
			names = append(names, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// wantFileGone fails unless a file listed in before is no longer under dir
// (so that a test holding a view of a floating block across a merge holds
// it into a file the store deleted, not one still in use). The store deletes
// retired floating files in the background, after a later call (Stats)
// finds them unused: this waits for that, up to 20 s.
func wantFileGone(t *testing.T, what string, s *BlockStore, dir string, before []string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		after := map[string]bool{}
		for _, n := range filesUnder(t, dir) {
			after[n] = true
		}
		for _, n := range before {
			if !after[n] {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s deleted no file: the test proves nothing", what)
		}
		if _, err := s.Stats(); err != nil {
			t.Fatal(err)
		}
	}
}

// Every block-store view equals the copying read of the same block:
// floating (mapped, and the unmapped tail stored after the reopen) and
// cemented, with and without metadata, at a distance, by level; misses are
// ErrNotFound; two readers' views of a cemented block share its mapped
// bytes (no copy).
func TestReaderBlockStoreViewsEqualCopies(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	opts := testBlockStoreOptions(HistoryArchive, 1)
	s := openBlockStoreT(t, dir, opts)
	storeChainT(t, s, 0, 119)
	s = reopenBlockStoreT(t, s, dir, opts)
	defer s.Close()
	mergeT(t, s, 119, 19, 39, 59, 79)
	storeChainT(t, s, 120, 139)
	r := newReaderT(t)

	for i := 0; i < 140; i++ {
		for _, md := range []bool{false, true} {
			what := fmt.Sprintf("ReadView(%d, metadata %v)", i, md)
			v, err := s.ReadView(r, hashOf(i), 0, md)
			c, cerr := s.Read(hashOf(i), 0, md)
			if cerr != nil {
				t.Fatalf("Read(%d): %v", i, cerr)
			}
			wantView(t, what, v, err, c)
			want := bsBareBlock(i)
			if md {
				want = blockOf(i)
			}
			wantView(t, what, v, err, want)
		}
	}
	for _, d := range []struct {
		from, distance int
		md             bool
	}{{139, 0, true}, {139, 37, true}, {119, 37, false}, {139, 130, true}, {100, 100, false}, {60, 55, true}} {
		what := fmt.Sprintf("ReadView(%d, distance %d, metadata %v)", d.from, d.distance, d.md)
		v, err := s.ReadView(r, hashOf(d.from), uint32(d.distance), d.md)
		c, cerr := s.Read(hashOf(d.from), uint32(d.distance), d.md)
		if cerr != nil {
			t.Fatalf("%s: copying read: %v", what, cerr)
		}
		wantView(t, what, v, err, c)
		if v.Level != int32(d.from-d.distance) {
			t.Fatalf("%s: level %d", what, v.Level)
		}
	}
	for i := 0; i < 80; i++ {
		for _, md := range []bool{false, true} {
			what := fmt.Sprintf("ReadByLevelView(%d, metadata %v)", i, md)
			v, err := s.ReadByLevelView(r, int32(i), md)
			c, cerr := s.ReadByLevel(int32(i), md)
			if cerr != nil {
				t.Fatalf("ReadByLevel(%d): %v", i, cerr)
			}
			wantView(t, what, v, err, c)
		}
	}

	// Block 4 has empty metadata, block 3 none.
	if v, err := s.ReadView(r, hashOf(4), 0, true); err != nil || !v.HasMetadata || v.Metadata == nil ||
		len(v.Metadata) != 0 {
		t.Fatalf("view of empty metadata = %+v, %v", v, err)
	}
	if v, err := s.ReadView(r, hashOf(3), 0, true); err != nil || v.HasMetadata || v.Metadata != nil {
		t.Fatalf("view of a block without metadata = %+v, %v", v, err)
	}
	if v, err := s.ReadByLevelView(r, 5, false); err != nil || v.HasMetadata || v.Metadata != nil {
		t.Fatalf("view read without metadata = %+v, %v", v, err)
	}

	if _, err := s.ReadView(r, hashOf(4000), 0, true); err != ErrNotFound {
		t.Fatalf("ReadView of an unknown hash: %v", err)
	}
	if _, err := s.ReadView(r, hashOf(139), 140, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadView past genesis: %v", err)
	}
	if _, err := s.ReadByLevelView(r, 90, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadByLevelView of a floating level: %v", err)
	}
	if _, err := s.ReadByLevelView(r, 4000, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadByLevelView above the store: %v", err)
	}
	// The reader works again after a miss.
	v, err := s.ReadView(r, hashOf(7), 0, true)
	wantView(t, "ReadView after a miss", v, err, blockOf(7))
	if _, err := s.ReadView(nil, hashOf(7), 0, true); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ReadView with a nil reader: %v", err)
	}

	// Borrowed, not copied: two readers' views of one cemented block point
	// at the same bytes of the chunk's mapping.
	r2 := newReaderT(t)
	v1, err1 := s.ReadByLevelView(r, 10, false)
	v2, err2 := s.ReadByLevelView(r2, 10, false)
	if err1 != nil || err2 != nil || len(v1.Contents) == 0 || &v1.Contents[0] != &v2.Contents[0] {
		t.Fatalf("two views of cemented level 10 do not share their bytes: %v, %v", err1, err2)
	}
}

// Floating.ReadView and Cemented.ReadViewByLevel equal ReadBlock and
// ReadByLevel; misses are ErrNotFound.
func TestReaderFloatingAndCementedViews(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "floating")
	f := openFloatingT(t, dir, FloatingRW, NoFsync)
	for i := 0; i < 30; i++ {
		if err := f.Append(blockOf(i), predsOf(i), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f = openFloatingT(t, dir, FloatingRW, NoFsync)
	defer f.Close()
	for i := 30; i < 40; i++ { // not mapped yet: copied into the reader
		if err := f.Append(blockOf(i), predsOf(i), false); err != nil {
			t.Fatal(err)
		}
	}
	r := newReaderT(t)
	for i := 0; i < 40; i++ {
		v, err := f.ReadView(r, hashOf(i))
		c, cerr := f.ReadBlock(hashOf(i))
		if cerr != nil {
			t.Fatal(cerr)
		}
		wantView(t, fmt.Sprintf("Floating.ReadView(%d)", i), v, err, c)
		wantView(t, fmt.Sprintf("Floating.ReadView(%d)", i), v, err, blockOf(i))
	}
	if _, err := f.ReadView(r, hashOf(4000)); err != ErrNotFound {
		t.Fatalf("Floating.ReadView of an unknown hash: %v", err)
	}

	c := openCementedT(t, filepath.Join(t.TempDir(), "cemented"))
	defer c.Close()
	if err := c.Cement(cemChain(0, 19), true, true); err != nil {
		t.Fatal(err)
	}
	if err := c.Cement(cemChain(20, 39), false, true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		for _, md := range []bool{false, true} {
			what := fmt.Sprintf("Cemented.ReadViewByLevel(%d, metadata %v)", i, md)
			v, err := c.ReadViewByLevel(r, int32(i), md)
			cb, cerr := c.ReadByLevel(int32(i), md)
			if cerr != nil {
				t.Fatal(cerr)
			}
			wantView(t, what, v, err, cb)
			want := bsBareBlock(i)
			if md && i < 20 {
				want = blockOf(i)
			}
			wantView(t, what, v, err, want)
		}
	}
	if _, err := c.ReadViewByLevel(r, 40, true); err != ErrNotFound {
		t.Fatalf("Cemented.ReadViewByLevel of a missing level: %v", err)
	}
}

// Views taken before merges stay unchanged after them: a view into the
// mapped floating file whose block a merge cements and the rolling GC then
// drops, and views of a cemented chunk (contents from its mapping,
// metadata from the reader's buffer) that a later rolling GC deletes.
func TestReaderViewOutlivesMergeAndGC(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rolling")
	opts := testBlockStoreOptions(HistoryRolling, 1)
	s := openBlockStoreT(t, dir, opts)
	storeChainT(t, s, 0, 99)
	s = reopenBlockStoreT(t, s, dir, opts)
	defer s.Close()

	rf := newReaderT(t)
	vf, err := s.ReadView(rf, hashOf(10), 0, true)
	wantView(t, "floating view", vf, err, blockOf(10))
	floating := filepath.Join(dir, "floating")
	before := filesUnder(t, floating)
	mergeT(t, s, 99, 19, 39)
	wantFileGone(t, "the first merge", s, floating, before)
	if st, err := s.Stats(); err != nil || st.CementedLowest != 20 || st.CementedHighest != 39 {
		t.Fatalf("stats after the first merge = %+v, %v", st, err)
	}
	if _, err := s.Read(hashOf(10), 0, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("block 10 still readable after the rolling GC: %v", err)
	}
	wantView(t, "floating view after the merge and GC", vf, nil, blockOf(10))

	rm, rc := newReaderT(t), newReaderT(t)
	vm, err := s.ReadByLevelView(rm, 31, true)
	wantView(t, "cemented view with metadata", vm, err, blockOf(31))
	vc, err := s.ReadByLevelView(rc, 30, false)
	wantView(t, "cemented view", vc, err, bsBareBlock(30))
	chunk := filepath.Join(dir, "cemented", "20_39")
	if _, err := os.Stat(chunk); err != nil {
		t.Fatalf("the chunk file of levels 20..39: %v", err)
	}
	mergeT(t, s, 99, 59)
	if st, err := s.Stats(); err != nil || st.CementedLowest != 40 || st.CementedHighest != 59 {
		t.Fatalf("stats after the second merge = %+v, %v", st, err)
	}
	if _, err := os.Stat(chunk); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the chunk of levels 20..39 was not deleted by the GC: %v", err)
	}
	if _, err := s.ReadByLevel(31, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("level 31 still readable after the rolling GC: %v", err)
	}
	wantView(t, "cemented view with metadata after the GC", vm, nil, blockOf(31))
	wantView(t, "cemented view after the GC", vc, nil, bsBareBlock(30))
	wantView(t, "floating view after two merges", vf, nil, blockOf(10))

	// Released readers read again.
	rf.Release()
	rc.Release()
	v, err := s.ReadView(rf, hashOf(90), 5, true)
	wantView(t, "read after Release", v, err, blockOf(85))
	v, err = s.ReadByLevelView(rc, 45, true)
	wantView(t, "read by level after Release", v, err, blockOf(45))
}

// A view outlives the store's close, until its reader's Release or Close;
// a read through a closed store or a closed reader is ErrClosed.
func TestReaderViewOutlivesStoreClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "blocks")
	opts := testBlockStoreOptions(HistoryArchive, 1)
	s := openBlockStoreT(t, dir, opts)
	storeChainT(t, s, 0, 59)
	s = reopenBlockStoreT(t, s, dir, opts)
	mergeT(t, s, 59, 19, 39)
	storeChainT(t, s, 60, 69)
	r1, r2, r3, r4 := newReaderT(t), newReaderT(t), newReaderT(t), newReaderT(t)
	v1, err := s.ReadView(r1, hashOf(50), 0, true)
	wantView(t, "mapped floating view", v1, err, blockOf(50))
	v2, err := s.ReadByLevelView(r2, 25, true)
	wantView(t, "cemented view", v2, err, blockOf(25))
	v3, err := s.ReadView(r3, hashOf(65), 0, true)
	wantView(t, "view of the unmapped tail", v3, err, blockOf(65))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	wantView(t, "mapped floating view after the close", v1, nil, blockOf(50))
	wantView(t, "cemented view after the close", v2, nil, blockOf(25))
	wantView(t, "tail view after the close", v3, nil, blockOf(65))
	if _, err := s.ReadView(r4, hashOf(50), 0, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadView on a closed store: %v", err)
	}
	if _, err := s.ReadByLevelView(r4, 25, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadByLevelView on a closed store: %v", err)
	}
	r1.Release()
	r1.Release()
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}

	s = openBlockStoreT(t, dir, opts)
	defer s.Close()
	v, err := s.ReadView(r1, hashOf(20), 3, true)
	wantView(t, "a released reader on the reopened store", v, err, blockOf(17))
	wantView(t, "view of an untouched reader", v3, nil, blockOf(65))
	if err := r2.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	r2.Release() // a no-op
	if _, err := s.ReadView(r2, hashOf(20), 0, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadView through a closed reader: %v", err)
	}

	// The same for the floating and cemented stores on their own.
	f := openFloatingT(t, filepath.Join(t.TempDir(), "floating"), FloatingRW, NoFsync)
	if err := f.Append(blockOf(0), nil, false); err != nil {
		t.Fatal(err)
	}
	vf, err := f.ReadView(r3, hashOf(0))
	wantView(t, "floating store view", vf, err, blockOf(0))
	f.Close()
	wantView(t, "floating store view after its close", vf, nil, blockOf(0))
	if _, err := f.ReadView(r4, hashOf(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Floating.ReadView on a closed store: %v", err)
	}
	c := openCementedT(t, filepath.Join(t.TempDir(), "cemented"))
	if err := c.Cement(cemChain(0, 9), true, true); err != nil {
		t.Fatal(err)
	}
	vc, err := c.ReadViewByLevel(r1, 8, true)
	wantView(t, "cemented store view", vc, err, blockOf(8))
	c.Close()
	wantView(t, "cemented store view after its close", vc, nil, blockOf(8))
	if _, err := c.ReadViewByLevel(r4, 8, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("Cemented.ReadViewByLevel on a closed store: %v", err)
	}
}

// viewOfDroppedReader returns a view whose Reader nothing else references.
func viewOfDroppedReader(t *testing.T, s *BlockStore, n int) BlockView {
	r, err := NewReader()
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.ReadView(r, hashOf(n), 0, true)
	wantView(t, "view", v, err, blockOf(n))
	return v
}

// A BlockView keeps its Reader reachable: the finalizer does not free the
// reader (and unmap the retired file its bytes lie in) while the view is
// in use, however often the garbage collector runs.
func TestBlockViewKeepsReaderReachable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rolling")
	opts := testBlockStoreOptions(HistoryRolling, 1)
	s := openBlockStoreT(t, dir, opts)
	storeChainT(t, s, 0, 59)
	s = reopenBlockStoreT(t, s, dir, opts)
	defer s.Close()
	v := viewOfDroppedReader(t, s, 10)
	floating := filepath.Join(dir, "floating")
	before := filesUnder(t, floating)
	mergeT(t, s, 59, 19, 39) // retires the floating file, drops level 10
	wantFileGone(t, "the merge", s, floating, before)
	for i := 0; i < 20; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	wantView(t, "view of a dropped reader after GCs", v, nil, blockOf(10))
	runtime.KeepAlive(v)
}

// Two goroutines, each with its own readers, read views of blocks near the
// moving top of a rolling store (which every merge keeps) while the test
// goroutine stores blocks and merges; each also holds one view across many
// reads of its other reader, and so across merges that retire its file
// and GCs that delete its chunk. Every view shows its block, before and
// after a yield.
func TestReaderConcurrentViewsDuringStoresAndMerges(t *testing.T) {
	const first, last, cycle = 100, 340, 20
	dir := filepath.Join(t.TempDir(), "rolling")
	opts := testBlockStoreOptions(HistoryRolling, 1)
	s := openBlockStoreT(t, dir, opts)
	storeChainT(t, s, 0, first)
	s = reopenBlockStoreT(t, s, dir, opts)
	defer s.Close()

	var top, merges atomic.Int64 // merges started
	top.Store(first)
	var stop atomic.Bool
	var reads atomic.Int64
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			r, err := NewReader()
			if err != nil {
				errs <- err
				return
			}
			defer r.Close()
			held, err := NewReader()
			if err != nil {
				errs <- err
				return
			}
			defer held.Close()
			var hv BlockView
			heldLevel := -1
			x := uint32(7 + g)
			for i := 0; !stop.Load(); i++ {
				x = x*1103515245 + 12345
				m := merges.Load()
				n := int(top.Load()) - int(x>>8)%30
				md := (i+g)%2 == 0
				want := bsBareBlock(n)
				if md {
					want = blockOf(n)
				}
				v, err := s.ReadView(r, hashOf(n), 0, md)
				if err == ErrNotFound && merges.Load() != m {
					// A merge started since n was chosen, and its GC may
					// have dropped n: choose again.
					continue
				}
				if err != nil || !viewIs(v, want) {
					errs <- fmt.Errorf("reader %d: view of %d: %+v, %v", g, n, v.Copy(), err)
					return
				}
				runtime.Gosched()
				if !viewIs(v, want) {
					errs <- fmt.Errorf("reader %d: view of %d changed", g, n)
					return
				}
				if heldLevel >= 0 && !viewIs(hv, blockOf(heldLevel)) {
					errs <- fmt.Errorf("reader %d: held view of %d changed", g, heldLevel)
					return
				}
				if i%200 == 0 {
					heldLevel = n
					hv, err = s.ReadView(held, hashOf(n), 0, true)
					if err == ErrNotFound && merges.Load() != m {
						heldLevel = -1
					} else if err != nil {
						errs <- fmt.Errorf("reader %d: held view of %d: %v", g, n, err)
						return
					}
				}
				reads.Add(1)
			}
		}(g)
	}
	cementedTo := 0
	for n := first + 1; n <= last; n++ {
		if err := s.StoreWith(blockOf(n), false); err != nil {
			t.Fatalf("store %d: %v", n, err)
		}
		top.Store(int64(n))
		if n%(2*cycle) == 0 {
			var ends []int32
			for e := cementedTo + cycle; e <= n-cycle; e += cycle {
				ends = append(ends, int32(e))
			}
			cementedTo = n - cycle
			merges.Add(1)
			mergeT(t, s, n, ends...)
		}
		if len(errs) > 0 {
			break
		}
		if n%10 == 0 {
			runtime.Gosched()
		}
	}
	for reads.Load() < 200 && len(errs) == 0 {
		runtime.Gosched()
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d reads during %d merges", reads.Load(), merges.Load())
	if st, err := s.Stats(); err != nil || st.CementedHighest != int32(cementedTo) || st.MergesDone == 0 {
		t.Fatalf("stats = %+v, %v", st, err)
	}
}

// A Reader shared by goroutines is serialised (memory-safe, if of little
// use: each read ends the other's view); each copies its view before the
// next read can start, which the mutex does not promise, so they take
// turns through a channel.
func TestReaderSharedTakesTurns(t *testing.T) {
	s := openBlockStoreT(t, filepath.Join(t.TempDir(), "blocks"), testBlockStoreOptions(HistoryArchive, 1))
	defer s.Close()
	storeChainT(t, s, 0, 49)
	r := newReaderT(t)
	turn := make(chan struct{}, 1)
	turn <- struct{}{}
	var wg sync.WaitGroup
	errs := make(chan error, 2)
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < 50; i += 2 {
				<-turn
				v, err := s.ReadView(r, hashOf(i), 0, true)
				var b *Block
				if err == nil {
					b = v.Copy()
				}
				turn <- struct{}{}
				if err != nil || !sameBlock(b, blockOf(i)) {
					errs <- fmt.Errorf("goroutine %d: view of %d: %v", g, i, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Read (one copy into Go memory per block) against ReadView (none), on
// blocks of 16 KiB contents and 4 KiB metadata.
func benchmarkBlockRead(b *testing.B, view bool) {
	dir := filepath.Join(b.TempDir(), "blocks")
	opts := testBlockStoreOptions(HistoryArchive, 1)
	s, err := OpenBlockStore(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	const n = 256
	big := func(i int) *Block {
		blk := blockOf(i)
		blk.Contents = make([]byte, 16<<10)
		blk.Metadata = make([]byte, 4<<10)
		blk.Contents[0], blk.Metadata[0] = byte(i), byte(i)
		return blk
	}
	for i := 0; i < n; i++ {
		if err := s.StoreWith(big(i), false); err != nil {
			b.Fatal(err)
		}
	}
	s.Close()
	if s, err = OpenBlockStore(dir, opts); err != nil { // floating file mapped
		b.Fatal(err)
	}
	defer s.Close()
	r, err := NewReader()
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetBytes(20 << 10)
	b.ResetTimer()
	sum := 0
	for i := 0; i < b.N; i++ {
		h := hashOf(i % n)
		if view {
			v, err := s.ReadView(r, h, 0, true)
			if err != nil {
				b.Fatal(err)
			}
			sum += int(v.Contents[0]) + int(v.Metadata[0])
		} else {
			blk, err := s.Read(h, 0, true)
			if err != nil {
				b.Fatal(err)
			}
			sum += int(blk.Contents[0]) + int(blk.Metadata[0])
		}
	}
	if sum < 0 {
		b.Fatal(sum)
	}
}

func BenchmarkBlockStoreRead(b *testing.B)     { benchmarkBlockRead(b, false) }
func BenchmarkBlockStoreReadView(b *testing.B) { benchmarkBlockRead(b, true) }
