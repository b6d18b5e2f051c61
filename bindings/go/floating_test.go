package tzstore

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func hashOf(n int) Hash {
	var h Hash
	for i := range h {
		h[i] = byte(n*31 + i*7)
	}
	h[0], h[1], h[2] = byte(n), byte(n>>8), byte(n>>16)
	return h
}

// blockOf is block n of a chain (0 is genesis): contents hold NUL bytes,
// every third block has no metadata, block 4 has empty metadata.
func blockOf(n int) *Block {
	b := &Block{
		Hash:        hashOf(n),
		Level:       int32(n),
		Predecessor: hashOf(max0(n - 1)),
		Contents:    []byte(fmt.Sprintf("block %d\x00ops\xff", n)),
	}
	switch {
	case n == 4:
		b.Metadata = []byte{}
	case n%3 != 0:
		b.Metadata = bytes.Repeat([]byte{byte(n)}, 100+n)
	}
	return b
}

func max0(n int) int {
	if n < 0 {
		return 0
	}
	return n
}

// predsOf: entry i is the 2^i-th ancestor, as far as the chain goes.
func predsOf(n int) []Hash {
	out := []Hash{}
	for i, d := 0, 1; i < 12 && n-d >= 0; i, d = i+1, d*2 {
		out = append(out, hashOf(n-d))
	}
	return out
}

func openFloatingT(t *testing.T, dir string, kind FloatingKind, flags Flags) *Floating {
	t.Helper()
	f, err := OpenFloating(dir, kind, flags)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return f
}

func sameBlock(a, b *Block) bool {
	return a.Hash == b.Hash && a.Level == b.Level && a.Predecessor == b.Predecessor &&
		bytes.Equal(a.Contents, b.Contents) && (a.Metadata == nil) == (b.Metadata == nil) &&
		bytes.Equal(a.Metadata, b.Metadata)
}

func TestFloatingRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "floating")
	f := openFloatingT(t, dir, FloatingRW, NoFsync)
	const n = 40
	for i := 0; i < n; i++ {
		if err := f.Append(blockOf(i), predsOf(i), i%10 == 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Append(blockOf(5), predsOf(5), true); err != nil {
		t.Fatalf("append of a stored block: %v", err)
	}
	if l, err := f.Len(); l != n || err != nil {
		t.Fatalf("Len = %d, %v", l, err)
	}
	for i := 0; i < n; i++ {
		h := hashOf(i)
		if ok, err := f.Mem(h); !ok || err != nil {
			t.Fatalf("Mem(%d) = %v, %v", i, ok, err)
		}
		b, err := f.ReadBlock(h)
		if err != nil || !sameBlock(b, blockOf(i)) {
			t.Fatalf("ReadBlock(%d) = %+v, %v", i, b, err)
		}
		p, err := f.FindPredecessors(h)
		if err != nil || !reflect.DeepEqual(p, predsOf(i)) {
			t.Fatalf("FindPredecessors(%d) = %v, %v", i, p, err)
		}
		b, p, err = f.ReadBlockAndPredecessors(h)
		if err != nil || !sameBlock(b, blockOf(i)) || !reflect.DeepEqual(p, predsOf(i)) {
			t.Fatalf("ReadBlockAndPredecessors(%d): %v", i, err)
		}
	}
	if b, _ := f.ReadBlock(hashOf(0)); b.Metadata != nil {
		t.Fatal("genesis has metadata")
	}
	if b, _ := f.ReadBlock(hashOf(4)); b.Metadata == nil || len(b.Metadata) != 0 {
		t.Fatalf("block 4 metadata = %v, want empty", b.Metadata)
	}

	missing := hashOf(9999)
	if ok, err := f.Mem(missing); ok || err != nil {
		t.Fatalf("Mem(missing) = %v, %v", ok, err)
	}
	if _, err := f.ReadBlock(missing); err != ErrNotFound {
		t.Fatalf("ReadBlock(missing): %v", err)
	}
	if _, err := f.FindPredecessors(missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("FindPredecessors(missing): %v", err)
	}
	if _, _, err := f.ReadBlockAndPredecessors(missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("ReadBlockAndPredecessors(missing): %v", err)
	}

	i := 0
	err := f.ForEach(func(b *Block, p []Hash) error {
		if !sameBlock(b, blockOf(i)) || !reflect.DeepEqual(p, predsOf(i)) {
			t.Fatalf("ForEach entry %d differs", i)
		}
		i++
		return nil
	})
	if err != nil || i != n {
		t.Fatalf("ForEach visited %d, %v", i, err)
	}
	stop := errors.New("stop")
	if err := f.ForEach(func(*Block, []Hash) error { return stop }); err != stop {
		t.Fatalf("ForEach returned %v, want the callback's error", err)
	}

	f.Close()
	f = openFloatingT(t, dir, FloatingRW, 0)
	defer f.Close()
	if b, err := f.ReadBlock(hashOf(n - 1)); err != nil || !sameBlock(b, blockOf(n-1)) {
		t.Fatalf("after reopen: %v", err)
	}
}

func TestFloatingErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "floating")
	f := openFloatingT(t, dir, FloatingRW, NoFsync)
	defer f.Close()
	if err := f.Append(blockOf(0), nil, true); err != nil {
		t.Fatal(err)
	}
	err := f.Append(blockOf(1), make([]Hash, 13), true)
	var e *Error
	if !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &e) || !strings.Contains(e.Message, "12") {
		t.Fatalf("13 predecessors: %v", err)
	}
	if _, err := OpenFloating(dir, FloatingRW, 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("second read-write open: %v", err)
	}
	if _, err := OpenFloating(dir+"-missing", FloatingRO, ReadOnly); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read-only open of a missing store: %v", err)
	}
	if _, err := OpenFloating(dir, FloatingKind(99), 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("unknown kind: %v", err)
	}
	tmp := openFloatingT(t, dir, FloatingRWTmp, NoFsync)
	if ok, err := tmp.Mem(hashOf(0)); ok || err != nil {
		t.Fatalf("another kind sees block 0: %v, %v", ok, err)
	}
	tmp.Close()

	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	ro := openFloatingT(t, dir, FloatingRW, ReadOnly)
	defer ro.Close()
	if err := ro.Append(blockOf(1), predsOf(1), true); !errors.Is(err, ErrReadOnly) || !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("append through a read-only handle: %v", err)
	}
	if err := f.Append(blockOf(1), predsOf(1), true); err != nil {
		t.Fatal(err)
	}
	if err := ro.Sync(); err != nil {
		t.Fatal(err)
	}
	if b, err := ro.ReadBlock(hashOf(1)); err != nil || !sameBlock(b, blockOf(1)) {
		t.Fatalf("read-only after sync: %v", err)
	}

	f.Close()
	f.Close()
	if _, err := f.ReadBlock(hashOf(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if _, err := f.Len(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Len after close: %v", err)
	}
	if err := f.ForEach(func(*Block, []Hash) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("ForEach after close: %v", err)
	}
}

// Reader goroutines share the handle with one appending goroutine: blocks
// stored before they start read back identical; a block appended meanwhile
// is either absent or complete.
func TestFloatingConcurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "floating")
	f := openFloatingT(t, dir, FloatingRW, NoFsync)
	defer f.Close()
	const n, total = 40, 340
	for i := 0; i < n; i++ {
		if err := f.Append(blockOf(i), predsOf(i), false); err != nil {
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
				if b, err := f.ReadBlock(hashOf(i)); err != nil || !sameBlock(b, blockOf(i)) {
					bad.Add(1)
				}
				j := total - 1 - i
				b, p, err := f.ReadBlockAndPredecessors(hashOf(j))
				if err != nil && !errors.Is(err, ErrNotFound) ||
					err == nil && (!sameBlock(b, blockOf(j)) || !reflect.DeepEqual(p, predsOf(j))) {
					bad.Add(1)
				}
				reads.Add(1)
			}
		}(r)
	}
	// Append only once the readers run, so that both overlap.
	for reads.Load() < 8 {
		runtime.Gosched()
	}
	for i := n; i < total; i++ {
		if err := f.Append(blockOf(i), predsOf(i), false); err != nil {
			t.Error(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if bad.Load() != 0 {
		t.Fatalf("%d bad reads of %d", bad.Load(), reads.Load())
	}
	if l, err := f.Len(); l != total || err != nil {
		t.Fatalf("Len = %d, %v", l, err)
	}
}

// ctxOf is the resulting context hash the context tests store with block n.
func ctxOf(n int) Hash {
	var h Hash
	for i := range h {
		h[i] = byte(0xc7 ^ (n*13 + i*5))
	}
	h[0], h[1] = byte(n), byte(n>>8)
	return h
}

// Even blocks are appended with a context, odd ones without (zeros); both
// read back from the index, also after a reopen.
func TestFloatingResultingContextHash(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "floating")
	f := openFloatingT(t, dir, FloatingRW, NoFsync)
	for i := 0; i < 30; i++ {
		var err error
		if i%2 == 0 {
			err = f.AppendWithContext(blockOf(i), ctxOf(i), predsOf(i), false)
		} else {
			err = f.Append(blockOf(i), predsOf(i), false)
		}
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	check := func(f *Floating) {
		t.Helper()
		for i := 0; i < 30; i++ {
			want := Hash{}
			if i%2 == 0 {
				want = ctxOf(i)
			}
			if got, err := f.ResultingContextHash(hashOf(i)); got != want || err != nil {
				t.Fatalf("context of %d = %x, %v; want %x", i, got, err, want)
			}
		}
		if _, err := f.ResultingContextHash(hashOf(30)); err != ErrNotFound {
			t.Fatalf("context of a missing block: %v", err)
		}
	}
	check(f)
	b, err := f.ReadBlock(hashOf(12))
	if err != nil || !sameBlock(b, blockOf(12)) {
		t.Fatalf("read of a block appended with a context = %+v, %v", b, err)
	}
	f.Close()
	if _, err := f.ResultingContextHash(hashOf(0)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	f = openFloatingT(t, dir, FloatingRW, NoFsync)
	defer f.Close()
	check(f)
}
