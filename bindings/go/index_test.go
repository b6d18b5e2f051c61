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

// keyOf is an 8-byte key holding NUL bytes; valueOf a 16-byte value.
func keyOf(n int) []byte {
	return []byte{byte(n), byte(n >> 8), byte(n >> 16), 0, 0, 0, 0, 0xa5}
}

func valueOf(n, version int) []byte {
	v := make([]byte, 16)
	for i := range v {
		v[i] = byte(n*13 + version*101 + i)
	}
	return v
}

func openIndexT(t *testing.T, dir string, flags Flags, logSize uint64) *Index {
	t.Helper()
	x, err := OpenIndex(dir, 8, 16, flags, logSize)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return x
}

func TestIndexRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	// A small log so that adds start background merges.
	x := openIndexT(t, dir, NoFsync, 100)
	const n = 600
	for i := 0; i < n; i++ {
		if err := x.Add(keyOf(i), valueOf(i, 0), i%100 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.AwaitMerge(); err != nil {
		t.Fatal(err)
	}
	if l, err := x.Len(); l != n || err != nil {
		t.Fatalf("Len = %d, %v", l, err)
	}
	for i := 0; i < n; i++ {
		if ok, err := x.Mem(keyOf(i)); !ok || err != nil {
			t.Fatalf("Mem(%d) = %v, %v", i, ok, err)
		}
		if v, err := x.Find(keyOf(i)); err != nil || !bytes.Equal(v, valueOf(i, 0)) {
			t.Fatalf("Find(%d) = %x, %v", i, v, err)
		}
	}
	if err := x.Add(keyOf(7), valueOf(7, 1), true); err != nil {
		t.Fatal(err)
	}
	if v, _ := x.Find(keyOf(7)); !bytes.Equal(v, valueOf(7, 1)) {
		t.Fatalf("replaced value = %x", v)
	}
	if ok, err := x.Mem(keyOf(n + 1)); ok || err != nil {
		t.Fatalf("Mem(missing) = %v, %v", ok, err)
	}
	if _, err := x.Find(keyOf(n + 1)); err != ErrNotFound {
		t.Fatalf("Find(missing): %v", err)
	}

	seen := map[string][]byte{}
	err := x.ForEach(func(k, v []byte) error {
		if _, dup := seen[string(k)]; dup {
			return fmt.Errorf("key %x twice", k)
		}
		seen[string(k)] = v
		return nil
	})
	if err != nil || len(seen) != n || !bytes.Equal(seen[string(keyOf(7))], valueOf(7, 1)) {
		t.Fatalf("ForEach: %d bindings, %v", len(seen), err)
	}
	stop := errors.New("stop")
	if err := x.ForEach(func(k, v []byte) error { return stop }); err != stop {
		t.Fatalf("ForEach returned %v, want the callback's error", err)
	}

	x.Close()
	x = openIndexT(t, dir, 0, 0)
	defer x.Close()
	if v, err := x.Find(keyOf(n - 1)); err != nil || !bytes.Equal(v, valueOf(n-1, 0)) {
		t.Fatalf("after reopen: %x, %v", v, err)
	}
}

func TestIndexErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	x := openIndexT(t, dir, NoFsync, 0)
	defer x.Close()
	if err := x.Add(keyOf(1), valueOf(1, 0), true); err != nil {
		t.Fatal(err)
	}
	var e *Error
	if err := x.Add([]byte("short"), valueOf(1, 0), true); !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("short key: %v", err)
	}
	if _, err := x.Find([]byte("toolongkey")); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("long key: %v", err)
	}
	if err := x.Remove(keyOf(1), true); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("Remove on a non-removable index: %v", err)
	}
	if _, err := OpenIndex(dir, 8, 16, 0, 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("second read-write open: %v", err)
	}
	if _, err := OpenIndex(dir+"-missing", 8, 16, ReadOnly, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read-only open of a missing index: %v", err)
	}
	ro := openIndexT(t, dir, ReadOnly, 0)
	defer ro.Close()
	if err := ro.Add(keyOf(2), valueOf(2, 0), true); !errors.Is(err, ErrReadOnly) || !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("Add through a read-only handle: %v", err)
	}
	if err := x.Add(keyOf(2), valueOf(2, 0), true); err != nil {
		t.Fatal(err)
	}
	if err := ro.Sync(); err != nil {
		t.Fatal(err)
	}
	if v, err := ro.Find(keyOf(2)); err != nil || !bytes.Equal(v, valueOf(2, 0)) {
		t.Fatalf("read-only after sync: %x, %v", v, err)
	}
	ro.Close()
	x.Close()
	x.Close()
	if _, err := x.Find(keyOf(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Find after close: %v", err)
	}
	if _, err := x.Len(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Len after close: %v", err)
	}
	if _, err := OpenIndex(dir, 8, 32, 0, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("reopen with other sizes: %v", err)
	}

	rdir := filepath.Join(t.TempDir(), "removable")
	r := openIndexT(t, rdir, Removable|NoFsync, 0)
	for i := 0; i < 10; i++ {
		if err := r.Add(keyOf(i), valueOf(i, 0), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Remove(keyOf(3), true); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(keyOf(99), true); err != nil {
		t.Fatalf("Remove of an unbound key: %v", err)
	}
	if _, err := r.Find(keyOf(3)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Find after Remove: %v", err)
	}
	r.Close()
	r = openIndexT(t, rdir, Removable, 0)
	defer r.Close()
	if ok, _ := r.Mem(keyOf(3)); ok {
		t.Fatal("removal not durable")
	}
}

// Reader goroutines share the handle with one goroutine adding (and
// merging): earlier bindings stay visible, a new one is absent or complete.
func TestIndexConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	x := openIndexT(t, dir, NoFsync, 100)
	defer x.Close()
	const n, total = 600, 1000
	for i := 0; i < n; i++ {
		if err := x.Add(keyOf(i), valueOf(i, 0), false); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var bad, reads atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < 8; r++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for !stop.Load() {
				i = (i*7 + 3) % n
				if v, err := x.Find(keyOf(i)); err != nil || !bytes.Equal(v, valueOf(i, 0)) {
					bad.Add(1)
				}
				j := total - 1 - i
				v, err := x.Find(keyOf(j))
				if err != nil && !errors.Is(err, ErrNotFound) || err == nil && !bytes.Equal(v, valueOf(j, 0)) {
					bad.Add(1)
				}
				reads.Add(1)
			}
		}(r)
	}
	for reads.Load() < 8 {
		runtime.Gosched()
	}
	for i := n; i < total; i++ {
		if err := x.Add(keyOf(i), valueOf(i, 0), false); err != nil {
			t.Error(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d bad reads of %d", bad.Load(), reads.Load())
	}
	if err := x.AwaitMerge(); err != nil {
		t.Fatal(err)
	}
	if l, err := x.Len(); l != total || err != nil {
		t.Fatalf("Len = %d, %v", l, err)
	}
}

// fillIndex binds keys 0..n-1 (version 0) and makes them durable.
func fillIndex(t *testing.T, x *Index, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if err := x.Add(keyOf(i), valueOf(i, 0), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Flush(); err != nil {
		t.Fatal(err)
	}
}

// wantKept checks that exactly the keys 0..n-1 for which kept(i) holds are
// bound, with their version-0 value.
func wantKept(t *testing.T, x *Index, n int, kept func(i int) bool) {
	t.Helper()
	want := 0
	for i := 0; i < n; i++ {
		v, err := x.Find(keyOf(i))
		switch {
		case kept(i):
			want++
			if err != nil || !bytes.Equal(v, valueOf(i, 0)) {
				t.Fatalf("kept key %d: %x, %v", i, v, err)
			}
		case !errors.Is(err, ErrNotFound):
			t.Fatalf("dropped key %d: %x, %v", i, v, err)
		}
	}
	if l, err := x.Len(); l != uint64(want) || err != nil {
		t.Fatalf("Len = %d, %v; want %d", l, err, want)
	}
}

// keyNumber is the n of keyOf(n).
func keyNumber(key []byte) int { return int(key[0]) | int(key[1])<<8 | int(key[2])<<16 }

func TestIndexFilterSurvivesReopen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	x := openIndexT(t, dir, 0, 100)
	const n = 500
	fillIndex(t, x, n)
	seen := map[int]bool{}
	err := x.Filter(func(k, v []byte) bool {
		i := keyNumber(k)
		if seen[i] || !bytes.Equal(v, valueOf(i, 0)) {
			t.Errorf("filter offered key %d twice or with value %x", i, v)
		}
		seen[i] = true
		// The filter may read the index it filters.
		if ok, err := x.Mem(k); !ok || err != nil {
			t.Errorf("Mem inside the filter: %v, %v", ok, err)
		}
		return i%2 == 0
	})
	if err != nil || len(seen) != n {
		t.Fatalf("Filter: %v, saw %d of %d keys", err, len(seen), n)
	}
	even := func(i int) bool { return i%2 == 0 }
	wantKept(t, x, n, even)
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	x = openIndexT(t, dir, 0, 100)
	defer x.Close()
	wantKept(t, x, n, even)
}

// Calls that write or wait on the index are refused from inside its
// filter; a panicking filter keeps the rest and re-raises on the caller.
func TestIndexFilterReentryAndPanic(t *testing.T) {
	x := openIndexT(t, filepath.Join(t.TempDir(), "index"), NoFsync, 0)
	defer x.Close()
	fillIndex(t, x, 50)
	var refused []error
	err := x.Filter(func(k, v []byte) bool {
		if len(refused) == 0 {
			refused = append(refused, x.Add(keyOf(1000), valueOf(0, 0), false), x.AwaitGC(), x.Clear())
			_, e := x.CancelGC()
			refused = append(refused, e)
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range refused {
		if !errors.Is(e, ErrInvalidArgument) {
			t.Errorf("write or wait %d inside the filter: %v", i, e)
		}
	}
	calls := 0
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the filter's panic", r)
			}
		}()
		_ = x.Filter(func(k, v []byte) bool {
			calls++
			if calls == 10 {
				panic("boom")
			}
			return false
		})
		t.Fatal("Filter did not re-raise the panic")
	}()
	if calls != 10 {
		t.Fatalf("the filter ran %d times, want 10 (not again after its panic)", calls)
	}
	if l, _ := x.Len(); l != 50-9 {
		t.Fatalf("Len = %d after a filter that dropped 9 keys then panicked", l)
	}
}

func TestIndexGCAsyncThenAwait(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	x := openIndexT(t, dir, NoFsync, 100)
	const n = 400
	fillIndex(t, x, n)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	started, err := x.GC(func(k, v []byte) bool {
		select {
		case entered <- struct{}{}:
		default:
		}
		<-release
		return keyNumber(k)%3 == 0
	}, false)
	if !started || err != nil {
		t.Fatalf("GC = %v, %v", started, err)
	}
	<-entered
	if x.IsGCFinished() || !x.IsMerging() {
		t.Fatalf("during the GC: IsGCFinished %v, IsMerging %v", x.IsGCFinished(), x.IsMerging())
	}
	// A second request while one runs is ignored, as in Octez.
	if again, err := x.GC(func(k, v []byte) bool { return false }, false); again || err != nil {
		t.Fatalf("GC while one runs = %v, %v", again, err)
	}
	wantKept(t, x, n, func(int) bool { return true })
	close(release)
	runtime.GC() // the filter stays reachable through its cgo handle
	if err := x.AwaitGC(); err != nil {
		t.Fatal(err)
	}
	if !x.IsGCFinished() || len(x.gc.pending) != 0 {
		t.Fatalf("after AwaitGC: finished %v, %d contexts kept", x.IsGCFinished(), len(x.gc.pending))
	}
	third := func(i int) bool { return i%3 == 0 }
	wantKept(t, x, n, third)
	// With wait, the GC is done on return.
	if started, err := x.GC(func(k, v []byte) bool { return keyNumber(k)%6 == 0 }, true); !started || err != nil {
		t.Fatalf("GC with wait = %v, %v", started, err)
	}
	sixth := func(i int) bool { return i%6 == 0 }
	wantKept(t, x, n, sixth)
	x.Close()
	x = openIndexT(t, dir, 0, 100)
	defer x.Close()
	wantKept(t, x, n, sixth)
}

// A background GC whose filter panics: the panic comes back from AwaitGC.
func TestIndexGCFilterPanic(t *testing.T) {
	x := openIndexT(t, filepath.Join(t.TempDir(), "index"), NoFsync, 0)
	defer x.Close()
	fillIndex(t, x, 30)
	if started, err := x.GC(func(k, v []byte) bool { panic("gc boom") }, false); !started || err != nil {
		t.Fatalf("GC = %v, %v", started, err)
	}
	var pe *FilterPanicError
	if err := x.AwaitGC(); !errors.As(err, &pe) || pe.Value != "gc boom" {
		t.Fatalf("AwaitGC after a panicking filter: %v", err)
	}
	if err := x.AwaitGC(); err != nil {
		t.Fatalf("second AwaitGC: %v (the panic is reported once)", err)
	}
	wantKept(t, x, 30, func(int) bool { return true })
}

func TestIndexCancelGC(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	x := openIndexT(t, dir, NoFsync, 100)
	defer x.Close()
	const n = 300
	fillIndex(t, x, n)
	if cancelled, err := x.CancelGC(); cancelled || err != nil {
		t.Fatalf("CancelGC with no GC = %v, %v", cancelled, err)
	}
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	if started, err := x.GC(func(k, v []byte) bool {
		once.Do(func() { close(entered) })
		<-release
		return false
	}, false); !started || err != nil {
		t.Fatalf("GC = %v, %v", started, err)
	}
	<-entered
	type result struct {
		cancelled bool
		err       error
	}
	done := make(chan result)
	go func() {
		c, err := x.CancelGC()
		done <- result{c, err}
	}()
	// CancelGC waits for the filter, which is blocked.
	select {
	case r := <-done:
		t.Fatalf("CancelGC returned while the filter was blocked: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if r := <-done; !r.cancelled || r.err != nil {
		t.Fatalf("CancelGC = %+v", r)
	}
	if !x.IsGCFinished() || len(x.gc.pending) != 0 {
		t.Fatal("the cancelled GC's context was not released")
	}
	wantKept(t, x, n, func(int) bool { return true })
	// A later GC runs normally.
	if started, err := x.GC(func(k, v []byte) bool { return keyNumber(k) < 10 }, true); !started || err != nil {
		t.Fatalf("GC after a cancel = %v, %v", started, err)
	}
	wantKept(t, x, n, func(i int) bool { return i < 10 })
}

func TestIndexClearAndTryMerge(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "index")
	// A log larger than the bindings, so that only TryMerge merges.
	x := openIndexT(t, dir, 0, 10000)
	if started, err := x.TryMerge(); started || err != nil {
		t.Fatalf("TryMerge of an empty log = %v, %v", started, err)
	}
	const n = 200
	fillIndex(t, x, n)
	if x.IsMerging() {
		t.Fatal("merging before TryMerge")
	}
	if started, err := x.TryMerge(); !started || err != nil {
		t.Fatalf("TryMerge = %v, %v", started, err)
	}
	if err := x.AwaitMerge(); err != nil {
		t.Fatal(err)
	}
	if x.IsMerging() {
		t.Fatal("still merging after AwaitMerge")
	}
	if started, err := x.TryMerge(); started || err != nil {
		t.Fatalf("TryMerge of a merged log = %v, %v", started, err)
	}
	wantKept(t, x, n, func(int) bool { return true })
	ro := openIndexT(t, dir, ReadOnly, 0)
	defer ro.Close()
	if ro.IsMerging() {
		t.Fatal("a read-only handle merges")
	}
	if _, err := ro.TryMerge(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("TryMerge read-only: %v", err)
	}
	if err := ro.Clear(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Clear read-only: %v", err)
	}
	if _, err := ro.GC(func(k, v []byte) bool { return true }, true); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("GC read-only: %v", err)
	}

	if err := x.Clear(); err != nil {
		t.Fatal(err)
	}
	wantKept(t, x, n, func(int) bool { return false })
	if err := ro.Sync(); err != nil {
		t.Fatal(err)
	}
	if l, err := ro.Len(); l != 0 || err != nil {
		t.Fatalf("read-only Len after Clear and Sync = %d, %v", l, err)
	}
	if err := x.Add(keyOf(1), valueOf(1, 0), true); err != nil {
		t.Fatal(err)
	}
	x.Close()
	x = openIndexT(t, dir, 0, 10000)
	defer x.Close()
	wantKept(t, x, n, func(i int) bool { return i == 1 })
}

// Close during a background GC waits for it, and the filter may read the
// index until the GC ends; the context is released.
func TestIndexCloseDuringGC(t *testing.T) {
	x := openIndexT(t, filepath.Join(t.TempDir(), "index"), NoFsync, 0)
	fillIndex(t, x, 50)
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	var readErr atomic.Value
	if started, err := x.GC(func(k, v []byte) bool {
		once.Do(func() { close(entered) })
		<-release
		if _, err := x.Find(k); err != nil {
			readErr.Store(err)
		}
		return true
	}, false); !started || err != nil {
		t.Fatalf("GC = %v, %v", started, err)
	}
	<-entered
	go func() {
		time.Sleep(50 * time.Millisecond)
		close(release)
	}()
	if err := x.Close(); err != nil {
		t.Fatal(err)
	}
	if err := readErr.Load(); err != nil {
		t.Fatalf("read inside the filter during Close: %v", err)
	}
	if !x.IsGCFinished() || len(x.gc.pending) != 0 {
		t.Fatal("the GC's context outlived Close")
	}
	if _, err := x.GC(func(k, v []byte) bool { return true }, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("GC after Close: %v", err)
	}
}
