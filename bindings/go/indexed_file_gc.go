package tzstore

/*
#include <stdint.h>
#include "tzstore.h"

// Defined in filter_gc.c.
tzs_status tzs_go_indexed_file_gc_filter(tzs_indexed_file *f, uintptr_t ctx, bool wait,
                                         bool *started, tzs_error **err);
*/
import "C"

// GCFilter is Octez's gc ?async for an indexed file: compacts the store,
// keeping the values of the keys for which keep(key, header) returns true
// (copies of the key and of the header stored in the index; the value is
// not read). keep is asked about the keys stored when the GC starts, on a
// library thread (or the goroutine waiting for the GC), one call at a
// time; values appended meanwhile are kept. The kept values are copied
// into a new generation that replaces the old one atomically. With wait
// false it returns at once (see AwaitGC, IsGCFinished, CancelGC); with
// wait true once the GC ended, returning its error. started is false when
// a GC was already running: this request is then ignored, as in Octez.
// keep is kept alive until the GC's end is observed (AwaitGC, CancelGC,
// IsGCFinished returning true, or Close).
//
// Inside keep, the store may be read (Mem, Header, Read, IsGCFinished)
// and appended to; AwaitGC, CancelGC and GCFilter with wait return
// ErrInvalidArgument, and Close must not be called. A panic in keep does
// not reach C: the key it panicked on and every later one are kept (keep
// is not called again for that GC), and the panic is re-raised here with
// wait, or returned by the next AwaitGC as a *FilterPanicError.
//
// Errors: ErrInvalidArgument (with wait, from inside a filter of this
// store), ErrReadOnly, ErrIO, the error of an earlier GC nobody awaited,
// and with wait this GC's.
func (f *IndexedFile) GCFilter(keep func(key, header []byte) bool, wait bool) (started bool, err error) {
	return f.gc.start(keep, wait, func(ctx C.uintptr_t, started *C.bool) error {
		return call(f.h, func(p *C.tzs_indexed_file, e cErrOut) cStatus {
			return C.tzs_go_indexed_file_gc_filter(p, ctx, C.bool(wait), started, e)
		})
	})
}

// IsGCFinished reports whether no compaction runs (Octez's
// is_gc_finished); true on a closed store. Never blocks.
func (f *IndexedFile) IsGCFinished() bool {
	finished := true
	f.gc.observe(func() bool {
		_ = f.h.use(func(p *C.tzs_indexed_file) error {
			finished = bool(C.tzs_indexed_file_is_gc_finished(p))
			return nil
		})
		return finished
	})
	return finished
}

// CancelGC stops the running compaction (from GCFilter or GC) and waits
// until it stopped: the store is left exactly as before it. cancelled is
// true if a compaction was stopped before it switched generations, false
// if none ran or it had already switched. ErrInvalidArgument from inside a
// GCFilter's filter.
func (f *IndexedFile) CancelGC() (cancelled bool, err error) {
	f.gc.observe(func() bool {
		cancelled, err = callOut(f.h, func(p *C.tzs_indexed_file, out *C.bool, e cErrOut) cStatus {
			return C.tzs_indexed_file_cancel_gc(p, out, e)
		}, func(b *C.bool) bool { return bool(*b) })
		return gcEnded(err)
	})
	return cancelled, err
}
