package tzstore

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ifKey is key n: 8 bytes holding a NUL byte, n in the last byte.
func ifKey(n int) []byte    { return append([]byte(fmt.Sprintf("key\x00%03d", n%1000)), byte(n)) }
func ifHeader(n int) []byte { return []byte(fmt.Sprintf("h%04d", n)) } // 5 bytes
func ifValue(n int) []byte {
	return []byte(fmt.Sprintf("value %d%s", n, strings.Repeat("x", n%7)))
}

func openIndexedFileT(t *testing.T, dir string, keySize, headerSize uint32, flags Flags) *IndexedFile {
	t.Helper()
	f, err := OpenIndexedFile(dir, keySize, headerSize, flags, 16)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return f
}

func wantIFValue(t *testing.T, what string, got []byte, err error, want []byte) {
	t.Helper()
	if err != nil || got == nil || !bytes.Equal(got, want) {
		t.Fatalf("%s = %q, %v; want %q", what, got, err, want)
	}
}

func TestIndexedFileRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "values")
	f := openIndexedFileT(t, dir, 8, 5, NoFsync)
	defer f.Close()
	if f.HeaderSize() != 5 {
		t.Fatalf("HeaderSize = %d", f.HeaderSize())
	}
	const n = 60
	for i := 0; i < n; i++ {
		if err := f.Append(ifKey(i), ifHeader(i), ifValue(i), i%10 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Append(ifKey(3), ifHeader(99), []byte("replaced"), true); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if i == 3 {
			continue
		}
		if ok, err := f.Mem(ifKey(i)); !ok || err != nil {
			t.Fatalf("mem %d = %v, %v", i, ok, err)
		}
		h, err := f.Header(ifKey(i))
		wantIFValue(t, "header", h, err, ifHeader(i))
		v, err := f.Read(ifKey(i))
		wantIFValue(t, "read", v, err, ifValue(i))
	}
	h, v, err := f.ReadWithHeader(ifKey(3))
	if err != nil || !bytes.Equal(h, ifHeader(99)) || string(v) != "replaced" {
		t.Fatalf("read with header = %q, %q, %v", h, v, err)
	}
	if err := f.Append(ifKey(n), ifHeader(n), nil, true); err != nil {
		t.Fatal(err)
	}
	v, err = f.Read(ifKey(n))
	wantIFValue(t, "read of an empty value", v, err, []byte{})

	missing := ifKey(200)
	if ok, err := f.Mem(missing); ok || err != nil {
		t.Fatalf("mem of a missing key = %v, %v", ok, err)
	}
	if _, err := f.Header(missing); err != ErrNotFound {
		t.Fatalf("header of a missing key: %v", err)
	}
	if _, err := f.Read(missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read of a missing key: %v", err)
	}
	if _, _, err := f.ReadWithHeader(missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read with header of a missing key: %v", err)
	}

	// gc keeps the even keys; a value appended afterwards stays.
	calls := 0
	if err := f.GC(func(k []byte) bool {
		calls++
		return k[7]%2 == 0
	}); err != nil {
		t.Fatal(err)
	}
	if err := f.Append(ifKey(101), ifHeader(101), ifValue(101), true); err != nil {
		t.Fatal(err)
	}
	if err := f.AwaitGC(); err != nil {
		t.Fatal(err)
	}
	if calls != n+1 {
		t.Fatalf("keep called %d times for %d keys", calls, n+1)
	}
	for i := 0; i < n; i++ {
		if i == 3 {
			continue
		}
		v, err := f.Read(ifKey(i))
		if i%2 == 0 {
			wantIFValue(t, "read after gc", v, err, ifValue(i))
		} else if !errors.Is(err, ErrNotFound) {
			t.Fatalf("read of dropped key %d: %q, %v", i, v, err)
		}
	}
	v, err = f.Read(ifKey(101))
	wantIFValue(t, "read of a value appended during gc", v, err, ifValue(101))

	// A panicking predicate keeps everything; the panic comes out of GC.
	func() {
		defer func() {
			if r := recover(); r != "predicate failed" {
				t.Fatalf("recovered %v", r)
			}
		}()
		_ = f.GC(func([]byte) bool { panic("predicate failed") })
		t.Fatal("GC did not re-panic")
	}()
	v, err = f.Read(ifKey(0))
	wantIFValue(t, "read after a panicking predicate", v, err, ifValue(0))
	if err := f.GC(func([]byte) bool { return true }); err != nil {
		t.Fatal(err)
	}
}

func TestIndexedFileErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "values")
	f := openIndexedFileT(t, dir, 8, 5, NoFsync)
	if err := f.Append(ifKey(1), ifHeader(1), ifValue(1), true); err != nil {
		t.Fatal(err)
	}
	var e *Error
	_, err := f.Read([]byte("short"))
	if !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &e) || !strings.Contains(e.Message, "key") {
		t.Fatalf("read with a short key: %v", err)
	}
	err = f.Append(ifKey(2), []byte("hh"), []byte("v"), true)
	if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), "header") {
		t.Fatalf("append with a short header: %v", err)
	}
	if err := f.AppendValue(ifKey(2), []byte("value 2"), true); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("AppendValue on a store with headers: %v", err)
	}
	if _, err := OpenIndexedFile(dir, 8, 5, 0, 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("second read-write open: %v", err)
	}
	if _, err := OpenIndexedFile(dir+"-missing", 8, 5, ReadOnly, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read-only open of a missing store: %v", err)
	}
	if _, err := OpenIndexedFile(dir+"-bad", 0, 5, 0, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("open with key size 0: %v", err)
	}

	ro := openIndexedFileT(t, dir, 8, 5, ReadOnly)
	defer ro.Close()
	v, err := ro.Read(ifKey(1))
	wantIFValue(t, "read-only read", v, err, ifValue(1))
	if err := ro.Append(ifKey(2), ifHeader(2), nil, true); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only append: %v", err)
	}
	if err := ro.GC(func([]byte) bool { return true }); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only gc: %v", err)
	}
	if err := f.Append(ifKey(2), ifHeader(2), ifValue(2), true); err != nil {
		t.Fatal(err)
	}
	if err := ro.Sync(); err != nil {
		t.Fatal(err)
	}
	v, err = ro.Read(ifKey(2))
	wantIFValue(t, "read-only read after sync", v, err, ifValue(2))

	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := f.Read(ifKey(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := f.GC(func([]byte) bool { return true }); !errors.Is(err, ErrClosed) {
		t.Fatalf("gc after close: %v", err)
	}
	f2 := openIndexedFileT(t, dir, 8, 5, 0)
	defer f2.Close()
	v, err = f2.Read(ifKey(2))
	wantIFValue(t, "read after reopen", v, err, ifValue(2))
}

func TestIndexedFileHeaderInValue(t *testing.T) {
	f := openIndexedFileT(t, filepath.Join(t.TempDir(), "simple"), 8, 4, HeaderInValue|NoFsync)
	defer f.Close()
	if err := f.AppendValue(ifKey(1), []byte("HEADrest"), true); err != nil {
		t.Fatal(err)
	}
	h, err := f.Header(ifKey(1))
	wantIFValue(t, "header", h, err, []byte("HEAD"))
	v, err := f.Read(ifKey(1))
	wantIFValue(t, "read", v, err, []byte("HEADrest"))
	if err := f.AppendValue(ifKey(2), []byte("ab"), true); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("short value: %v", err)
	}
	if err := f.Append(ifKey(2), []byte("HEAD"), []byte("HEADx"), true); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("header given: %v", err)
	}

	// A zero-size header is an empty, present header.
	g := openIndexedFileT(t, filepath.Join(t.TempDir(), "noheader"), 8, 0, NoFsync)
	defer g.Close()
	if err := g.Append(ifKey(1), nil, []byte("v"), true); err != nil {
		t.Fatal(err)
	}
	h, v, err = g.ReadWithHeader(ifKey(1))
	if err != nil || h == nil || len(h) != 0 || string(v) != "v" {
		t.Fatalf("read with an empty header = %q, %q, %v", h, v, err)
	}
}

// wantIFKept checks that exactly the keys 0..n-1 for which kept(i) holds
// are readable, with their value and header.
func wantIFKept(t *testing.T, f *IndexedFile, n int, kept func(i int) bool) {
	t.Helper()
	for i := 0; i < n; i++ {
		h, v, err := f.ReadWithHeader(ifKey(i))
		if !kept(i) {
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("dropped key %d: %q, %v", i, v, err)
			}
			continue
		}
		wantIFValue(t, fmt.Sprintf("value %d", i), v, err, ifValue(i))
		wantIFValue(t, fmt.Sprintf("header %d", i), h, err, ifHeader(i))
	}
}

// The GC filter sees each stored key with its header, runs in the
// background, and the result survives a reopen; values appended during
// the GC are kept.
func TestIndexedFileGCFilter(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "values")
	f := openIndexedFileT(t, dir, 8, 5, 0)
	const n = 120
	for i := 0; i < n; i++ {
		if err := f.Append(ifKey(i), ifHeader(i), ifValue(i), i == n-1); err != nil {
			t.Fatal(err)
		}
	}
	release := make(chan struct{})
	var mu sync.Mutex
	seen := map[int]bool{}
	started, err := f.GCFilter(func(key, header []byte) bool {
		<-release
		i := int(key[len(key)-1])
		mu.Lock()
		defer mu.Unlock()
		if seen[i] || !bytes.Equal(key, ifKey(i)) || !bytes.Equal(header, ifHeader(i)) {
			t.Errorf("filter got key %q header %q (twice: %v)", key, header, seen[i])
		}
		seen[i] = true
		// The store may be read from inside the filter.
		if ok, err := f.Mem(key); !ok || err != nil {
			t.Errorf("Mem inside the filter: %v, %v", ok, err)
		}
		return i%4 != 0
	}, false)
	if !started || err != nil {
		t.Fatalf("GCFilter = %v, %v", started, err)
	}
	if f.IsGCFinished() {
		t.Fatal("IsGCFinished while the filter is blocked")
	}
	if again, err := f.GCFilter(func(key, header []byte) bool { return false }, false); again || err != nil {
		t.Fatalf("GCFilter while one runs = %v, %v", again, err)
	}
	// Appended during the GC: kept whatever the filter says.
	if err := f.Append(ifKey(200), ifHeader(200), ifValue(200), true); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := f.AwaitGC(); err != nil {
		t.Fatal(err)
	}
	if !f.IsGCFinished() || len(f.gc.pending) != 0 || len(seen) != n {
		t.Fatalf("after AwaitGC: finished %v, %d contexts kept, %d keys seen", f.IsGCFinished(),
			len(f.gc.pending), len(seen))
	}
	kept := func(i int) bool { return i%4 != 0 }
	wantIFKept(t, f, n, kept)
	v, err := f.Read(ifKey(200))
	wantIFValue(t, "appended during the GC", v, err, ifValue(200))
	// With wait the GC has ended on return.
	if started, err := f.GCFilter(func(key, header []byte) bool { return key[len(key)-1]%2 == 1 }, true); !started || err != nil {
		t.Fatalf("GCFilter with wait = %v, %v", started, err)
	}
	odd := func(i int) bool { return i%2 == 1 }
	wantIFKept(t, f, n, odd)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f = openIndexedFileT(t, dir, 8, 5, 0)
	defer f.Close()
	wantIFKept(t, f, n, odd)

	ro := openIndexedFileT(t, dir, 8, 5, ReadOnly)
	defer ro.Close()
	if _, err := ro.GCFilter(func(key, header []byte) bool { return true }, true); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only GCFilter: %v", err)
	}
}

func TestIndexedFileCancelGCAndPanic(t *testing.T) {
	f := openIndexedFileT(t, filepath.Join(t.TempDir(), "values"), 8, 5, NoFsync)
	defer f.Close()
	const n = 80
	for i := 0; i < n; i++ {
		if err := f.Append(ifKey(i), ifHeader(i), ifValue(i), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	entered := make(chan struct{})
	var once sync.Once
	var refused error
	if started, err := f.GCFilter(func(key, header []byte) bool {
		once.Do(func() {
			_, refused = f.CancelGC()
			close(entered)
		})
		<-release
		return false
	}, false); !started || err != nil {
		t.Fatalf("GCFilter = %v, %v", started, err)
	}
	<-entered
	if !errors.Is(refused, ErrInvalidArgument) {
		t.Fatalf("CancelGC inside the filter: %v", refused)
	}
	done := make(chan error, 1)
	var cancelled bool
	go func() {
		var err error
		cancelled, err = f.CancelGC()
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("CancelGC returned while the filter was blocked: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-done; !cancelled || err != nil {
		t.Fatalf("CancelGC = %v, %v", cancelled, err)
	}
	all := func(int) bool { return true }
	wantIFKept(t, f, n, all)
	if err := f.AwaitGC(); err != nil {
		t.Fatalf("AwaitGC after a cancel: %v", err)
	}

	calls := 0
	if started, err := f.GCFilter(func(key, header []byte) bool {
		calls++
		if calls == 5 {
			panic("if boom")
		}
		return true
	}, false); !started || err != nil {
		t.Fatalf("GCFilter = %v, %v", started, err)
	}
	var pe *FilterPanicError
	if err := f.AwaitGC(); !errors.As(err, &pe) || pe.Value != "if boom" {
		t.Fatalf("AwaitGC after a panicking filter: %v", err)
	}
	if calls != 5 {
		t.Fatalf("filter called %d times, want 5 (not after its panic)", calls)
	}
	wantIFKept(t, f, n, all)
}
