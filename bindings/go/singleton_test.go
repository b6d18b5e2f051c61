package tzstore

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

func openT(t *testing.T, path string, flags Flags) *Singleton {
	t.Helper()
	s, err := OpenSingleton(path, flags)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return s
}

func TestSingletonRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "single")
	s := openT(t, path, NoFsync)
	defer s.Close()

	if _, err := s.Read(); err != ErrNotFound {
		t.Fatalf("read of an unset value: %v, want ErrNotFound", err)
	}
	for _, v := range [][]byte{[]byte("hello"), {0, 1, 0, 255}, {}} {
		if err := s.Write(v); err != nil {
			t.Fatal(err)
		}
		got, err := s.Read()
		if err != nil || !bytes.Equal(got, v) || got == nil {
			t.Fatalf("read = %q, %v; want %q", got, err, v)
		}
	}
	if err := s.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Read(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read after delete: %v", err)
	}
	if err := s.Delete(); err != nil {
		t.Fatalf("deleting an unset value: %v", err)
	}
}

func TestSingletonErrors(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "single")
	s := openT(t, path, NoFsync)
	defer s.Close()
	if err := s.Write([]byte("v1")); err != nil {
		t.Fatal(err)
	}

	_, err := OpenSingleton(path, 0)
	var e *Error
	if !errors.Is(err, ErrLocked) || !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("second read-write open: %v, want ErrLocked with a message", err)
	}
	if errors.Is(err, ErrReadOnly) {
		t.Fatal("ErrLocked matched ErrReadOnly")
	}

	ro := openT(t, path, ReadOnly)
	defer ro.Close()
	err = ro.Write([]byte("x"))
	if !errors.Is(err, ErrReadOnly) || !strings.Contains(err.Error(), path) {
		t.Fatalf("write through a read-only handle: %v", err)
	}
	if !strings.HasPrefix(err.Error(), "TZS_READ_ONLY: ") {
		t.Fatalf("error text %q", err.Error())
	}
	if err := ro.Delete(); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("delete through a read-only handle: %v", err)
	}

	if err := s.Write([]byte("v2")); err != nil {
		t.Fatal(err)
	}
	if err := ro.Sync(); err != nil {
		t.Fatal(err)
	}
	if got, err := ro.Read(); err != nil || string(got) != "v2" {
		t.Fatalf("read-only after sync = %q, %v", got, err)
	}

	if _, err := OpenSingleton(filepath.Join(dir, "missing", "x"), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open in a missing directory: %v", err)
	}
	if _, err := OpenSingleton(path+"-flags", 1<<30); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("open with unknown flags: %v", err)
	}
	if _, err := OpenSingleton(path+"\x00x", 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("open of a path with a NUL byte: %v", err)
	}
}

func TestSingletonClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "single")
	s := openT(t, path, NoFsync)
	if err := s.Write([]byte("kept")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := s.Read(); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	if err := s.Write(nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
	// Close released the lock; the value is durable.
	s2 := openT(t, path, 0)
	defer s2.Close()
	if got, err := s2.Read(); err != nil || string(got) != "kept" {
		t.Fatalf("reopen read = %q, %v", got, err)
	}
}

func TestStatusNamesAndSentinels(t *testing.T) {
	for st := StatusNotFound; st <= StatusPanic; st++ {
		s, ok := sentinels[st]
		if !ok {
			t.Fatalf("no sentinel for %v", st)
		}
		if !strings.HasPrefix(st.String(), "TZS_") || st.String() == "TZS_UNKNOWN" {
			t.Fatalf("status %d has name %q", st, st.String())
		}
		err := error(&Error{Status: st, Message: "m"})
		if !errors.Is(err, s) {
			t.Fatalf("errors.Is(%v, sentinel) = false", err)
		}
	}
	if Version() == "" {
		t.Fatal("empty version")
	}
}

// Many goroutines share one read-write and one read-only handle; every read
// returns one of the written values.
func TestSingletonConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "single")
	s := openT(t, path, NoFsync)
	defer s.Close()
	ro := openT(t, path, ReadOnly)
	defer ro.Close()
	if err := s.Write([]byte("g0-0")); err != nil {
		t.Fatal(err)
	}
	const goroutines, ops = 16, 200
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < ops; i++ {
				if g%2 == 0 {
					if err := s.Write([]byte(fmt.Sprintf("g%d-%d", g, i))); err != nil {
						errs <- err
						return
					}
				} else if g%4 == 1 {
					if err := ro.Sync(); err != nil {
						errs <- err
						return
					}
				}
				h := s
				if g%4 == 1 {
					h = ro
				}
				v, err := h.Read()
				if err != nil || !bytes.HasPrefix(v, []byte("g")) {
					errs <- fmt.Errorf("read = %q, %v", v, err)
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

// Close waits for calls in progress; calls after it get ErrClosed, never a
// freed handle.
func TestSingletonCloseWhileInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "single")
	s := openT(t, path, NoFsync)
	if err := s.Write([]byte("v")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, 8)
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started <- struct{}{}
			for {
				_, err := s.Read()
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-started
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A handle dropped without Close is closed by its finalizer, releasing the
// lock. Finalizers run asynchronously after a collection, so the test
// collects and yields until the lock is free.
func TestSingletonFinalizer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "single")
	func() {
		s := openT(t, path, NoFsync)
		if err := s.Write([]byte("v")); err != nil {
			t.Fatal(err)
		}
	}()
	for i := 0; i < 1000; i++ {
		runtime.GC()
		runtime.Gosched()
		s, err := OpenSingleton(path, NoFsync)
		if err == nil {
			s.Close()
			return
		}
		if !errors.Is(err, ErrLocked) {
			t.Fatal(err)
		}
	}
	t.Fatal("the finalizer never closed the dropped handle")
}
