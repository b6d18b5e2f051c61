package tzstore

import (
	"errors"
	"runtime"
	"sync/atomic"
	"testing"
)

// The helpers of call.go and handle.go on a handle over Go memory, so that
// closed handles, status conversion and the finalizer can be tested without
// the library deciding the outcome.

func testHandle(closed *atomic.Bool) *handle[int] {
	return newHandle(new(int), "test store /x", func(*int) { closed.Store(true) })
}

func ok(*int, cErrOut) cStatus { return cStatus(StatusOK) }

func TestCallOnClosedHandle(t *testing.T) {
	var closed atomic.Bool
	h := testHandle(&closed)
	h.Close()
	if !closed.Load() {
		t.Fatal("Close did not close the C handle")
	}
	called := false
	f := func(*int, cErrOut) cStatus { called = true; return cStatus(StatusOK) }
	err := call(h, f)
	if !errors.Is(err, ErrClosed) || err.Error() != "TZS_CLOSED: test store /x is closed" {
		t.Fatalf("call on a closed handle: %v", err)
	}
	if found, err := callMem(h, f); found || !errors.Is(err, ErrClosed) {
		t.Fatalf("callMem on a closed handle: %v, %v", found, err)
	}
	v, err := callOut(h, func(*int, *int32, cErrOut) cStatus { called = true; return cStatus(StatusOK) },
		func(*int32) string { return "converted" })
	if v != "" || !errors.Is(err, ErrClosed) {
		t.Fatalf("callOut on a closed handle: %q, %v", v, err)
	}
	if called {
		t.Fatal("a helper called C on a closed handle")
	}
}

func TestCallConvertsStatus(t *testing.T) {
	var closed atomic.Bool
	h := testHandle(&closed)
	defer h.Close()
	status := func(s Status) func(*int, cErrOut) cStatus {
		return func(*int, cErrOut) cStatus { return cStatus(s) }
	}
	if err := call(h, ok); err != nil {
		t.Fatalf("TZS_OK: %v", err)
	}
	if err := call(h, status(StatusNotFound)); err != ErrNotFound {
		t.Fatalf("TZS_NOT_FOUND without an error object: %v, want the sentinel", err)
	}
	if found, err := callMem(h, status(StatusNotFound)); found || err != nil {
		t.Fatalf("callMem of TZS_NOT_FOUND: %v, %v", found, err)
	}
	if found, err := callMem(h, ok); !found || err != nil {
		t.Fatalf("callMem of TZS_OK: %v, %v", found, err)
	}
	if found, err := callMem(h, status(StatusIO)); found || !errors.Is(err, ErrIO) {
		t.Fatalf("callMem of TZS_IO: %v, %v", found, err)
	}
	fill := func(s Status) func(*int, *int32, cErrOut) cStatus {
		return func(_ *int, out *int32, _ cErrOut) cStatus { *out = 7; return cStatus(s) }
	}
	conversions := 0
	conv := func(out *int32) int64 { conversions++; return int64(*out) * 2 }
	if v, err := callOut(h, fill(StatusOK), conv); v != 14 || err != nil {
		t.Fatalf("callOut of TZS_OK: %v, %v", v, err)
	}
	if v, err := callOut(h, fill(StatusCorrupted), conv); v != 0 || !errors.Is(err, ErrCorrupted) {
		t.Fatalf("callOut of TZS_CORRUPTED: %v, %v", v, err)
	}
	if conversions != 1 {
		t.Fatalf("conv ran %d times, want once (not after an error)", conversions)
	}
}

// The handle a call runs on is not finalized during the call even when the
// caller holds it nowhere else; once unreachable after the call, it is.
func TestCallKeepsHandleAlive(t *testing.T) {
	var closed atomic.Bool
	err := call(testHandle(&closed), func(p *int, _ cErrOut) cStatus {
		for i := 0; i < 20; i++ {
			runtime.GC()
			runtime.Gosched()
		}
		if closed.Load() {
			return cStatus(StatusPanic)
		}
		*p = 1
		return cStatus(StatusOK)
	})
	if err != nil {
		t.Fatalf("the handle was closed during the call: %v", err)
	}
	for i := 0; i < 1000 && !closed.Load(); i++ {
		runtime.GC()
		runtime.Gosched()
	}
	if !closed.Load() {
		t.Fatal("the finalizer never closed the unreachable handle, so the test above proves nothing")
	}
}
