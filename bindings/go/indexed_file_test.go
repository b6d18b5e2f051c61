package tzstore

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
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
