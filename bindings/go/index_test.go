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
