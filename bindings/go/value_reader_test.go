package tzstore

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// valueViewIs reports whether v shows value and header, both non-nil as
// the copying reads return them.
func valueViewIs(v ValueView, value, header []byte) bool {
	return v.Value != nil && v.Header != nil && bytes.Equal(v.Value, value) && bytes.Equal(v.Header, header)
}

// wantValueView fails unless the read returned a view of value and header.
func wantValueView(t *testing.T, what string, v ValueView, err error, value, header []byte) {
	t.Helper()
	if err != nil || !valueViewIs(v, value, header) {
		t.Fatalf("%s = %q, %q, %v; want %q, %q", what, v.Value, v.Header, err, value, header)
	}
}

// wantViewOfCopy fails unless ReadView of key equals ReadWithHeader of it.
func wantViewOfCopy(t *testing.T, what string, f *IndexedFile, r *Reader, key []byte) ValueView {
	t.Helper()
	v, err := f.ReadView(r, key)
	h, c, cerr := f.ReadWithHeader(key)
	if cerr != nil {
		t.Fatalf("%s: ReadWithHeader: %v", what, cerr)
	}
	wantValueView(t, what, v, err, c, h)
	return v
}

func appendIFT(t *testing.T, f *IndexedFile, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := f.Append(ifKey(i), ifHeader(i), ifValue(i), false); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
}

// reopenIndexedFileT closes f and opens dir again, so that the values
// stored so far are read from the values file's mapping rather than from
// its unmapped tail.
func reopenIndexedFileT(t *testing.T, f *IndexedFile, dir string, headerSize uint32, flags Flags) *IndexedFile {
	t.Helper()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return openIndexedFileT(t, dir, 8, headerSize, flags)
}

// keepEven is a GC predicate keeping the values of even n (ifKey's last
// byte is n mod 256).
func keepEven(key []byte) bool { return key[len(key)-1]%2 == 0 }

// gcT runs a GC keeping the even keys and waits for it.
func gcT(t *testing.T, f *IndexedFile) {
	t.Helper()
	if err := f.GC(keepEven); err != nil {
		t.Fatal(err)
	}
	if err := f.AwaitGC(); err != nil {
		t.Fatal(err)
	}
}

// wantValuesFileGone fails unless a file listed in before is no longer
// under dir within 20 s (so that a view held across a GC is held into a
// values file the GC unlinked, not one still in use).
func wantValuesFileGone(t *testing.T, what, dir string, before []string) {
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
	}
}

// Every value view equals ReadWithHeader of the same key: values present
// at the open (mapped), values appended since (the unmapped tail), a
// replaced value, an empty value; HeaderInValue stores and a zero header
// size; misses are ErrNotFound, a wrong key size or a nil reader
// ErrInvalidArgument; two readers' views of a mapped value share its
// bytes (no copy).
func TestIndexedFileReadViewEqualsRead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "values")
	f := openIndexedFileT(t, dir, 8, 5, NoFsync)
	appendIFT(t, f, 0, 59)
	f = reopenIndexedFileT(t, f, dir, 5, NoFsync)
	defer f.Close()
	appendIFT(t, f, 60, 79)
	if err := f.Append(ifKey(3), ifHeader(99), []byte("replaced"), false); err != nil {
		t.Fatal(err)
	}
	if err := f.Append(ifKey(80), ifHeader(80), nil, false); err != nil {
		t.Fatal(err)
	}
	r := newReaderT(t)
	for i := 0; i < 80; i++ {
		what := fmt.Sprintf("ReadView(%d)", i)
		v := wantViewOfCopy(t, what, f, r, ifKey(i))
		if i == 3 {
			wantValueView(t, what, v, nil, []byte("replaced"), ifHeader(99))
		} else {
			wantValueView(t, what, v, nil, ifValue(i), ifHeader(i))
		}
	}
	v := wantViewOfCopy(t, "view of an empty value", f, r, ifKey(80))
	if v.Value == nil || len(v.Value) != 0 {
		t.Fatalf("view of an empty value = %#v", v.Value)
	}

	if _, err := f.ReadView(r, ifKey(500)); err != ErrNotFound {
		t.Fatalf("ReadView of a missing key: %v", err)
	}
	// The reader works again after a miss.
	v, err := f.ReadView(r, ifKey(7))
	wantValueView(t, "ReadView after a miss", v, err, ifValue(7), ifHeader(7))
	var e *Error
	if _, err := f.ReadView(r, []byte("short")); !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &e) ||
		e.Status != StatusInvalidArgument {
		t.Fatalf("ReadView with a short key: %v", err)
	}
	if _, err := f.ReadView(r, append(ifKey(7), 0)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ReadView with a long key: %v", err)
	}
	if _, err := f.ReadView(r, nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ReadView with a nil key: %v", err)
	}
	if _, err := f.ReadView(nil, ifKey(7)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("ReadView with a nil reader: %v", err)
	}
	v, err = f.ReadView(r, ifKey(8))
	wantValueView(t, "ReadView after bad arguments", v, err, ifValue(8), ifHeader(8))

	// Copy outlives the next read.
	c := v.Copy()
	if _, err := f.ReadView(r, ifKey(9)); err != nil {
		t.Fatal(err)
	}
	wantValueView(t, "copy after the next read", c, nil, ifValue(8), ifHeader(8))
	if c.r != nil || &c.Value[0] == &v.Value[0] {
		t.Fatal("Copy shares the view's bytes or holds its reader")
	}

	// Borrowed, not copied: two readers' views of a value present at the
	// open point at the same bytes of the values file's mapping.
	r2 := newReaderT(t)
	v1, err1 := f.ReadView(r, ifKey(10))
	v2, err2 := f.ReadView(r2, ifKey(10))
	if err1 != nil || err2 != nil || &v1.Value[0] != &v2.Value[0] {
		t.Fatalf("two views of mapped value 10 do not share their bytes: %v, %v", err1, err2)
	}

	// The header is the value's start in a HeaderInValue store.
	sdir := filepath.Join(t.TempDir(), "simple")
	s := openIndexedFileT(t, sdir, 8, 4, HeaderInValue|NoFsync)
	if err := s.AppendValue(ifKey(1), []byte("HEADrest"), false); err != nil {
		t.Fatal(err)
	}
	s = reopenIndexedFileT(t, s, sdir, 4, HeaderInValue|NoFsync)
	defer s.Close()
	if err := s.AppendValue(ifKey(2), []byte("HDR2"), false); err != nil {
		t.Fatal(err)
	}
	v = wantViewOfCopy(t, "HeaderInValue view", s, r, ifKey(1))
	wantValueView(t, "HeaderInValue view", v, nil, []byte("HEADrest"), []byte("HEAD"))
	v = wantViewOfCopy(t, "HeaderInValue view of the tail", s, r, ifKey(2))
	wantValueView(t, "HeaderInValue view of the tail", v, nil, []byte("HDR2"), []byte("HDR2"))

	// A zero-size header is an empty, present header.
	g := openIndexedFileT(t, filepath.Join(t.TempDir(), "noheader"), 8, 0, NoFsync)
	defer g.Close()
	if err := g.Append(ifKey(1), nil, []byte("v"), false); err != nil {
		t.Fatal(err)
	}
	v = wantViewOfCopy(t, "view with an empty header", g, r, ifKey(1))
	wantValueView(t, "view with an empty header", v, nil, []byte("v"), []byte{})
}

// Views held across a GC that drops their keys and unlinks the values
// file they point into (mapped value; tail value appended after the open)
// are unchanged, while the copying read of their key misses; a released
// reader reads again.
func TestValueViewOutlivesGC(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "values")
	f := openIndexedFileT(t, dir, 8, 5, NoFsync)
	appendIFT(t, f, 0, 59)
	f = reopenIndexedFileT(t, f, dir, 5, NoFsync)
	defer f.Close()
	appendIFT(t, f, 60, 69)
	rm, rt := newReaderT(t), newReaderT(t)
	vm, err := f.ReadView(rm, ifKey(11))
	wantValueView(t, "mapped view", vm, err, ifValue(11), ifHeader(11))
	vt, err := f.ReadView(rt, ifKey(61))
	wantValueView(t, "tail view", vt, err, ifValue(61), ifHeader(61))
	before := filesUnder(t, dir)
	gcT(t, f)
	wantValuesFileGone(t, "the GC", dir, before)
	for _, i := range []int{11, 61} {
		if _, err := f.Read(ifKey(i)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("key %d still readable after the GC: %v", i, err)
		}
	}
	runtime.GC()
	wantValueView(t, "mapped view after the GC", vm, nil, ifValue(11), ifHeader(11))
	wantValueView(t, "tail view after the GC", vt, nil, ifValue(61), ifHeader(61))

	rm.Release()
	if _, err := f.ReadView(rm, ifKey(11)); err != ErrNotFound {
		t.Fatalf("ReadView of a dropped key: %v", err)
	}
	v, err := f.ReadView(rm, ifKey(12))
	wantValueView(t, "view after the GC", v, err, ifValue(12), ifHeader(12))
	wantValueView(t, "tail view of an untouched reader", vt, nil, ifValue(61), ifHeader(61))
}

// Views outlive the IndexedFile's Close, until their reader's next read,
// Release or Close; a read through a closed store or a closed reader is
// ErrClosed.
func TestValueViewOutlivesClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "values")
	f := openIndexedFileT(t, dir, 8, 5, NoFsync)
	appendIFT(t, f, 0, 29)
	f = reopenIndexedFileT(t, f, dir, 5, NoFsync)
	appendIFT(t, f, 30, 39)
	r1, r2, r3 := newReaderT(t), newReaderT(t), newReaderT(t)
	v1, err := f.ReadView(r1, ifKey(20))
	wantValueView(t, "mapped view", v1, err, ifValue(20), ifHeader(20))
	v2, err := f.ReadView(r2, ifKey(35))
	wantValueView(t, "tail view", v2, err, ifValue(35), ifHeader(35))
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	wantValueView(t, "mapped view after the close", v1, nil, ifValue(20), ifHeader(20))
	wantValueView(t, "tail view after the close", v2, nil, ifValue(35), ifHeader(35))
	if _, err := f.ReadView(r3, ifKey(20)); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadView on a closed store: %v", err)
	}
	r1.Release()

	f = openIndexedFileT(t, dir, 8, 5, NoFsync)
	defer f.Close()
	v, err := f.ReadView(r1, ifKey(21))
	wantValueView(t, "a released reader on the reopened store", v, err, ifValue(21), ifHeader(21))
	wantValueView(t, "view of an untouched reader", v2, nil, ifValue(35), ifHeader(35))
	if err := r2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ReadView(r2, ifKey(21)); !errors.Is(err, ErrClosed) {
		t.Fatalf("ReadView through a closed reader: %v", err)
	}
}

// valueViewOfDroppedReader returns a view whose Reader nothing else
// references.
func valueViewOfDroppedReader(t *testing.T, f *IndexedFile, n int) ValueView {
	r, err := NewReader()
	if err != nil {
		t.Fatal(err)
	}
	v, err := f.ReadView(r, ifKey(n))
	wantValueView(t, "view", v, err, ifValue(n), ifHeader(n))
	return v
}

// A ValueView keeps its Reader reachable: the finalizer does not free the
// reader (and unmap the unlinked values file its bytes lie in) while the
// view is in use.
func TestValueViewKeepsReaderReachable(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "values")
	f := openIndexedFileT(t, dir, 8, 5, NoFsync)
	appendIFT(t, f, 0, 59)
	f = reopenIndexedFileT(t, f, dir, 5, NoFsync)
	defer f.Close()
	v := valueViewOfDroppedReader(t, f, 11)
	before := filesUnder(t, dir)
	gcT(t, f) // drops key 11, unlinks the values file
	wantValuesFileGone(t, "the GC", dir, before)
	for i := 0; i < 20; i++ {
		runtime.GC()
		runtime.Gosched()
	}
	wantValueView(t, "view of a dropped reader after GCs", v, nil, ifValue(11), ifHeader(11))
	runtime.KeepAlive(v)
}

// One Reader alternates block and value reads (and misses of both): each
// read shows its own data, whatever the reader held before.
func TestReaderAlternatesBlocksAndValues(t *testing.T) {
	bdir := filepath.Join(t.TempDir(), "blocks")
	opts := testBlockStoreOptions(HistoryArchive, 1)
	s := openBlockStoreT(t, bdir, opts)
	storeChainT(t, s, 0, 59)
	s = reopenBlockStoreT(t, s, bdir, opts)
	defer s.Close()
	mergeT(t, s, 59, 19)
	vdir := filepath.Join(t.TempDir(), "values")
	f := openIndexedFileT(t, vdir, 8, 5, NoFsync)
	appendIFT(t, f, 0, 29)
	f = reopenIndexedFileT(t, f, vdir, 5, NoFsync)
	defer f.Close()
	appendIFT(t, f, 30, 59)

	r := newReaderT(t)
	for i := 0; i < 60; i++ {
		b, err := s.ReadView(r, hashOf(i), 0, true)
		wantView(t, fmt.Sprintf("block view %d", i), b, err, blockOf(i))
		v, err := f.ReadView(r, ifKey(i))
		wantValueView(t, fmt.Sprintf("value view %d", i), v, err, ifValue(i), ifHeader(i))
		if i%2 == 0 {
			b, err = s.ReadByLevelView(r, int32(i%20), i%4 == 0)
			want := bsBareBlock(i % 20)
			if i%4 == 0 {
				want = blockOf(i % 20)
			}
			wantView(t, fmt.Sprintf("cemented view %d", i%20), b, err, want)
		}
		if i%5 == 0 {
			if _, err := f.ReadView(r, ifKey(500+i)); err != ErrNotFound {
				t.Fatalf("value miss: %v", err)
			}
			if _, err := s.ReadView(r, hashOf(4000), 0, true); err != ErrNotFound {
				t.Fatalf("block miss: %v", err)
			}
		}
	}
}

// Two goroutines, each with its own readers, read views of even keys
// (which every GC keeps) while the test goroutine appends even and odd
// keys and runs GCs dropping the odd ones; each also holds one view
// across many reads of its other reader, and so across GCs that unlink
// the values file it points into. Every view shows its value, before and
// after a yield.
func TestValueViewsConcurrentWithAppendsAndGCs(t *testing.T) {
	const first, last, cycle = 100, 1600, 150
	dir := filepath.Join(t.TempDir(), "values")
	f := openIndexedFileT(t, dir, 8, 5, NoFsync)
	appendIFT(t, f, 0, first)
	f = reopenIndexedFileT(t, f, dir, 5, NoFsync)
	defer f.Close()

	var top, gcs atomic.Int64
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
			var hv ValueView
			heldKey := -1
			x := uint32(7 + g)
			for i := 0; !stop.Load(); i++ {
				x = x*1103515245 + 12345
				n := int(top.Load()) - int(x>>8)%100
				n -= n % 2 // even: kept by every GC
				v, err := f.ReadView(r, ifKey(n))
				if err != nil || !valueViewIs(v, ifValue(n), ifHeader(n)) {
					errs <- fmt.Errorf("reader %d: view of %d: %q, %q, %v", g, n, v.Value, v.Header, err)
					return
				}
				runtime.Gosched()
				if !valueViewIs(v, ifValue(n), ifHeader(n)) {
					errs <- fmt.Errorf("reader %d: view of %d changed", g, n)
					return
				}
				if heldKey >= 0 && !valueViewIs(hv, ifValue(heldKey), ifHeader(heldKey)) {
					errs <- fmt.Errorf("reader %d: held view of %d changed", g, heldKey)
					return
				}
				if i%300 == 0 {
					heldKey = n
					if hv, err = f.ReadView(held, ifKey(n)); err != nil {
						errs <- fmt.Errorf("reader %d: held view of %d: %v", g, n, err)
						return
					}
				}
				reads.Add(1)
			}
		}(g)
	}
	for n := first + 1; n <= last; n++ {
		if err := f.Append(ifKey(n), ifHeader(n), ifValue(n), false); err != nil {
			t.Fatalf("append %d: %v", n, err)
		}
		top.Store(int64(n))
		if n%cycle == 0 {
			// A GC in the background, awaited after more appends.
			if err := f.GC(keepEven); err != nil {
				t.Fatal(err)
			}
			gcs.Add(1)
		}
		if n%cycle == cycle/2 {
			if err := f.AwaitGC(); err != nil {
				t.Fatal(err)
			}
		}
		if len(errs) > 0 {
			break
		}
		if n%10 == 0 {
			runtime.Gosched()
		}
	}
	for reads.Load() < 500 && len(errs) == 0 {
		runtime.Gosched()
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := f.AwaitGC(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d reads during %d GCs", reads.Load(), gcs.Load())
	if gcs.Load() == 0 {
		t.Fatal("no GC ran")
	}
	if _, err := f.Read(ifKey(first + 1)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("odd key %d kept by the GCs: %v", first+1, err)
	}
}
