package tzstore

/*
#include <stdint.h>
#include "tzstore.h"

// Defined in filter_gc.c.
tzs_status tzs_go_index_filter(tzs_index *ix, uintptr_t ctx, tzs_error **err);
tzs_status tzs_go_index_gc(tzs_index *ix, uintptr_t ctx, bool wait, bool *started, tzs_error **err);
*/
import "C"

import "errors"

// The layer-2 operations of an index (Octez's indexed_store.mli, mirage
// index): Filter, the background GC and its control, Clear, TryMerge.
//
// A filter (of Filter or GC) gets copies of the key and the value, which it
// may keep. It runs on a library thread or on the goroutine waiting for
// the GC, one call at a time. Inside it, the index may be read (Find, Mem,
// Len, ForEach, IsMerging, IsGCFinished); calls that write or wait (Add,
// Remove, Flush, Filter, GC, AwaitGC, CancelGC, Clear, TryMerge,
// AwaitMerge) return ErrInvalidArgument instead of waiting for themselves,
// and Close must not be called. A panic in a filter does not reach C: the
// binding it panicked on and every later one are kept (the filter is not
// called again for that run), and the panic is re-raised by Filter or by
// GC with wait, or returned by the next AwaitGC as a *FilterPanicError
// for a background GC.

// Filter keeps only the bindings for which keep(key, value) returns true
// (mirage index's filter) and returns once the result is durable. Readers
// see every binding until the filtered data is published, then only the
// kept ones; bindings added meanwhile are kept. Waits for a running GC
// first. Errors: ErrInvalidArgument (from inside a filter of this index),
// ErrReadOnly, ErrCorrupted, ErrNoSpace, ErrIO; on any error the index is
// unchanged.
func (x *Index) Filter(keep func(key, value []byte) bool) error {
	return runFilter(keep, func(ctx C.uintptr_t) error {
		return call(x.h, func(p *C.tzs_index, e cErrOut) cStatus { return C.tzs_go_index_filter(p, ctx, e) })
	})
}

// GC is Octez's gc ?async: keeps only the bindings for which keep(key,
// value) returns true, as Filter does, but as a background GC. With wait
// false it returns at once (see AwaitGC, IsGCFinished, CancelGC); with
// wait true once the GC is durable (or was cancelled meanwhile). started
// is false when a GC was already running: this request is then ignored, as
// in Octez. keep is kept alive until the GC's end is observed (AwaitGC,
// CancelGC, IsGCFinished returning true, or Close). Errors:
// ErrInvalidArgument (from inside a filter of this index), ErrReadOnly,
// the error of an earlier GC nobody awaited, and with wait this GC's.
func (x *Index) GC(keep func(key, value []byte) bool, wait bool) (started bool, err error) {
	return x.gc.start(keep, wait, func(ctx C.uintptr_t, started *C.bool) error {
		return call(x.h, func(p *C.tzs_index, e cErrOut) cStatus {
			return C.tzs_go_index_gc(p, ctx, C.bool(wait), started, e)
		})
	})
}

// AwaitGC waits for the running GC, if any (Octez's wait_gc_completion),
// and returns its outcome once: nil (also for a cancelled GC), its error
// (ErrCorrupted, ErrNoSpace, ErrIO, ErrPanic; the index is then as before
// it), or a *FilterPanicError if its filter panicked.
func (x *Index) AwaitGC() error {
	var err error
	x.gc.observe(func() bool {
		err = call(x.h, func(p *C.tzs_index, e cErrOut) cStatus { return C.tzs_index_await_gc(p, e) })
		return gcEnded(err)
	})
	if err != nil {
		return err
	}
	return x.gc.takePanic()
}

// IsGCFinished reports whether no GC runs (Octez's is_gc_finished); true
// on a closed index. Never blocks.
func (x *Index) IsGCFinished() bool {
	finished := true
	x.gc.observe(func() bool {
		_ = x.h.use(func(p *C.tzs_index) error {
			finished = bool(C.tzs_index_is_gc_finished(p))
			return nil
		})
		return finished
	})
	return finished
}

// CancelGC stops the GC started by GC and waits until it stopped: the
// index is left exactly as before it. cancelled is true if a GC was
// stopped before it published its result, false if none ran, it had
// already finished, or it is a Filter. ErrInvalidArgument from inside a
// filter of this index.
func (x *Index) CancelGC() (cancelled bool, err error) {
	x.gc.observe(func() bool {
		cancelled, err = callOut(x.h, func(p *C.tzs_index, out *C.bool, e cErrOut) cStatus {
			return C.tzs_index_cancel_gc(p, out, e)
		}, func(b *C.bool) bool { return bool(*b) })
		return gcEnded(err)
	})
	return cancelled, err
}

// Clear removes every binding (mirage index's clear), durably on return: a
// crash leaves every binding or none. A running GC is cancelled and a
// running merge waited for. Errors: ErrInvalidArgument (from inside a
// filter of this index), ErrReadOnly, ErrNoSpace, ErrIO.
func (x *Index) Clear() error {
	var err error
	x.gc.observe(func() bool {
		err = call(x.h, func(p *C.tzs_index, e cErrOut) cStatus { return C.tzs_index_clear(p, e) })
		return err == nil
	})
	return err
}

// TryMerge starts a background merge of the log when it holds any binding
// and no merge or GC runs, and returns at once; started says whether it
// started one (wait for it with AwaitMerge). Errors: ErrInvalidArgument
// (from inside a filter of this index), ErrReadOnly, ErrNoSpace, ErrIO, or
// a failed background merge's error (reported once).
func (x *Index) TryMerge() (started bool, err error) {
	return callOut(x.h, func(p *C.tzs_index, out *C.bool, e cErrOut) cStatus {
		return C.tzs_index_try_merge(p, out, e)
	}, func(b *C.bool) bool { return bool(*b) })
}

// IsMerging reports whether a merge or a GC runs in the background (mirage
// index's is_merging); false on a read-only or closed index. Never blocks.
func (x *Index) IsMerging() bool {
	merging := false
	_ = x.h.use(func(p *C.tzs_index) error {
		merging = bool(C.tzs_index_is_merging(p))
		return nil
	})
	return merging
}

// gcEnded tells whether an await or a cancel that returned err waited for
// the GC: every outcome but a refused call (from inside a filter, or on a
// closed handle, whose close already waited but is observed by Close).
func gcEnded(err error) bool {
	return !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrClosed)
}
