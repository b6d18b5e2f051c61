package tzstore

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
)

func openKvT(t *testing.T, root string, flags Flags) *Kv {
	t.Helper()
	kv, err := OpenKv(root, flags)
	if err != nil {
		t.Fatalf("open %s: %v", root, err)
	}
	return kv
}

func kvRoot(t *testing.T) string {
	root := filepath.Join(t.TempDir(), "kv")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	return root
}

func wantValue(t *testing.T, kv *Kv, key, want string) {
	t.Helper()
	if v, err := kv.Get(key); err != nil || string(v) != want {
		t.Fatalf("Get(%q) = %q, %v; want %q", key, v, err, want)
	}
}

func TestKvStore(t *testing.T) {
	root := kvRoot(t)
	kv := openKvT(t, root, NoFsync)
	defer kv.Close()
	bin := "v\x00\xff"
	if err := kv.Set("a/b/c", []byte(bin)); err != nil {
		t.Fatal(err)
	}
	wantValue(t, kv, "a/b/c", bin)
	wantValue(t, kv, "/a/b/c", bin)
	if k, err := kv.Exists("a/b/c"); k != KvValue || err != nil {
		t.Fatalf("Exists(value) = %v, %v", k, err)
	}
	if k, err := kv.Exists("a/b"); k != KvDictionary || err != nil {
		t.Fatalf("Exists(dictionary) = %v, %v", k, err)
	}
	if k, err := kv.Exists(""); k != KvDictionary || err != nil {
		t.Fatalf("Exists(root) = %v, %v", k, err)
	}
	if n, err := kv.Size("a/b/c"); n != 3 || err != nil {
		t.Fatalf("Size = %d, %v", n, err)
	}
	_ = kv.Set("a/b/a", []byte("first"))
	_ = kv.Set("a/z", nil)
	if l, err := kv.List("a"); err != nil || !reflect.DeepEqual(l, []KvEntry{{"b", KvDictionary}, {"z", KvValue}}) {
		t.Fatalf("List = %v, %v", l, err)
	}
	if l, _ := kv.List("a/b"); len(l) != 2 || l[0].Name != "a" || l[1].Name != "c" {
		t.Fatalf("List(a/b) = %v", l)
	}
	if v, err := kv.Get("a/z"); err != nil || v == nil || len(v) != 0 {
		t.Fatalf("empty value = %v, %v", v, err)
	}

	_ = kv.Set("p", []byte("0123456789"))
	for _, c := range []struct {
		off, n uint64
		want   string
	}{{2, 3, "234"}, {8, 100, "89"}, {50, 3, ""}} {
		if v, err := kv.GetPartial("p", c.off, c.n); err != nil || string(v) != c.want {
			t.Fatalf("GetPartial(%d, %d) = %q, %v", c.off, c.n, v, err)
		}
	}
	if err := kv.SetPartial("p", 8, []byte("XYZ")); err != nil {
		t.Fatal(err)
	}
	wantValue(t, kv, "p", "01234567XYZ")
	if d, ps, err := kv.LastModified("p"); err != nil || d < 19000 || ps >= 86400e12 {
		t.Fatalf("LastModified = %d, %d, %v", d, ps, err)
	}
	_ = kv.Set("q", []byte("01234567XYZ"))
	dp, err1 := kv.Digest("p")
	dq, err2 := kv.Digest("q")
	da, err3 := kv.Digest("a")
	if err1 != nil || err2 != nil || err3 != nil || dp != dq || da == dp {
		t.Fatalf("digests: %v %v %v", err1, err2, err3)
	}
	if err := kv.Rename("q", "moved/q"); err != nil {
		t.Fatal(err)
	}
	wantValue(t, kv, "moved/q", "01234567XYZ")
	if err := kv.Allocate("zeros", 4); err != nil {
		t.Fatal(err)
	}
	wantValue(t, kv, "zeros", "\x00\x00\x00\x00")
	var e *Error
	if err := kv.Allocate("zeros", 4); !errors.Is(err, ErrKeyExists) || !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("Allocate of a bound key: %v", err)
	}

	// Not found.
	if _, err := kv.Get("missing"); err != ErrNotFound {
		t.Fatalf("Get(missing): %v", err)
	}
	if _, err := kv.Exists("missing"); err != ErrNotFound {
		t.Fatalf("Exists(missing): %v", err)
	}
	if _, err := kv.Size("missing"); err != ErrNotFound {
		t.Fatalf("Size(missing): %v", err)
	}
	if _, err := kv.List("missing"); err != ErrNotFound {
		t.Fatalf("List(missing): %v", err)
	}
	if _, _, err := kv.LastModified("missing"); err != ErrNotFound {
		t.Fatalf("LastModified(missing): %v", err)
	}
	if _, err := kv.Digest("missing"); err != ErrNotFound {
		t.Fatalf("Digest(missing): %v", err)
	}
	if err := kv.Rename("missing", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Rename(missing): %v", err)
	}

	// Errors.
	if _, err := kv.Get("a/b"); !errors.Is(err, ErrValueExpected) || !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("Get(dictionary): %v", err)
	}
	if err := kv.Set("a/b/c/d", []byte("x")); !errors.Is(err, ErrDictionaryExpected) {
		t.Fatalf("Set below a value: %v", err)
	}
	if err := kv.Set("../escape", []byte("x")); !errors.Is(err, ErrInvalidArgument) || !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("Set(../escape): %v", err)
	}
	if _, err := kv.Get("a\x00b"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("key with NUL: %v", err)
	}
	if _, err := OpenKv(root+"-missing", 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open of a missing root: %v", err)
	}
	ro := openKvT(t, root, ReadOnly)
	wantValue(t, ro, "p", "01234567XYZ")
	if err := ro.Set("p", []byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Set through a read-only handle: %v", err)
	}
	if err := ro.Batch(func(*KvBatch) error { return nil }, -1); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Batch on a read-only handle: %v", err)
	}
	ro.Close()

	for _, k := range []string{"a/z", "a", "never"} {
		if err := kv.Remove(k); err != nil {
			t.Fatalf("Remove(%q): %v", k, err)
		}
	}
	if _, err := kv.Exists("a/b/c"); err != ErrNotFound {
		t.Fatalf("after Remove: %v", err)
	}
	kv.Close()
	kv.Close()
	if _, err := kv.Get("p"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
}

func TestKvBatch(t *testing.T) {
	root := kvRoot(t)
	kv := openKvT(t, root, NoFsync)
	defer kv.Close()
	_ = kv.Set("p", []byte("old"))
	var kept *KvBatch
	err := kv.Batch(func(b *KvBatch) error {
		kept = b
		if err := b.Set("batch/x", []byte("1")); err != nil {
			return err
		}
		if err := b.Set("batch/y", []byte("2")); err != nil {
			return err
		}
		if v, err := b.Get("batch/x"); err != nil || string(v) != "1" {
			t.Errorf("batch does not see its write: %q, %v", v, err)
		}
		if k, err := b.Exists("batch"); k != KvDictionary || err != nil {
			t.Errorf("batch Exists = %v, %v", k, err)
		}
		if l, err := b.List("batch"); len(l) != 2 || err != nil {
			t.Errorf("batch List = %v, %v", l, err)
		}
		return b.Remove("p")
	}, -1)
	if err != nil {
		t.Fatal(err)
	}
	wantValue(t, kv, "batch/x", "1")
	wantValue(t, kv, "batch/y", "2")
	if _, err := kv.Get("p"); err != ErrNotFound {
		t.Fatalf("removed in batch: %v", err)
	}
	if err := kept.Set("late", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("batch used after commit: %v", err)
	}

	// A change by someone else after the batch read a key: conflict, rerun.
	other := openKvT(t, root, NoFsync)
	defer other.Close()
	runs := 0
	err = kv.Batch(func(b *KvBatch) error {
		runs++
		v, err := b.Get("batch/x")
		if err != nil {
			return err
		}
		if runs == 1 {
			if err := other.Set("batch/x", []byte("changed")); err != nil {
				return err
			}
		}
		return b.Set("batch/x", append(v, "+1"...))
	}, -1)
	if err != nil || runs != 2 {
		t.Fatalf("conflicting batch: %v after %d runs", err, runs)
	}
	wantValue(t, kv, "batch/x", "changed+1")

	// Always conflicting: retries + 1 runs, then ErrTooManyRetries.
	runs = 0
	err = kv.Batch(func(b *KvBatch) error {
		runs++
		_, _ = b.Get("batch/y")
		if err := other.Set("batch/y", []byte(strconv.Itoa(runs))); err != nil {
			return err
		}
		return b.Set("batch/z", []byte("never"))
	}, 2)
	if !errors.Is(err, ErrTooManyRetries) || runs != 3 {
		t.Fatalf("always conflicting: %v after %d runs", err, runs)
	}

	// An error from fn, or a panic, discards the batch.
	mine := errors.New("mine")
	if err := kv.Batch(func(b *KvBatch) error { _ = b.Set("batch/w", nil); return mine }, -1); err != mine {
		t.Fatalf("error from fn: %v", err)
	}
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("no panic")
			}
		}()
		_ = kv.Batch(func(b *KvBatch) error { _ = b.Set("batch/w", nil); panic("stop") }, -1)
	}()
	if _, err := kv.Exists("batch/w"); err != ErrNotFound {
		t.Fatalf("discarded batch wrote: %v", err)
	}
	if _, err := kv.Exists("batch/z"); err != ErrNotFound {
		t.Fatalf("failed batch wrote: %v", err)
	}
}

// Goroutines increment one counter through batches, on a shared handle and
// on their own: no increment is lost.
func TestKvConcurrentBatches(t *testing.T) {
	root := kvRoot(t)
	kv := openKvT(t, root, NoFsync)
	defer kv.Close()
	_ = kv.Set("counter", []byte("0"))
	const goroutines, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine, err := OpenKv(root, NoFsync)
			if err != nil {
				errs <- err
				return
			}
			defer mine.Close()
			for i := 0; i < each; i++ {
				h := kv
				if i%2 == 1 {
					h = mine
				}
				err := h.Batch(func(b *KvBatch) error {
					v, err := b.Get("counter")
					if err != nil {
						return err
					}
					n, err := strconv.Atoi(string(v))
					if err != nil {
						return err
					}
					return b.Set("counter", []byte(strconv.Itoa(n+1)))
				}, 1000)
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wantValue(t, kv, "counter", strconv.Itoa(goroutines*each))
}
