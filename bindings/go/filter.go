package tzstore

// #include <stdint.h>
// #include "tzstore.h"
import "C"

import (
	"fmt"
	"runtime/cgo"
	"sync"
	"unsafe"
)

// FilterPanicError is the error AwaitGC returns after a background GC
// whose filter panicked: the filter kept the binding it panicked on and
// every later one (it was not called again), so the GC removed only
// bindings the filter had dropped before. Value is what it panicked with.
type FilterPanicError struct {
	Value any
}

func (e *FilterPanicError) Error() string {
	return fmt.Sprintf("tzstore: GC filter panicked: %v", e.Value)
}

// filterState is what the C filter callback reaches through its
// cgo.Handle: the Go filter, and the panic that stopped it.
type filterState struct {
	keep     func(key, value []byte) bool
	panicked bool
	panicVal any
}

// goFilterBinding is the tzs_filter_fn of every GC filter (through the
// trampoline of filter_gc.c). It runs on a library worker thread or on the
// thread waiting for the GC, one call at a time for a given GC. A panic
// never unwinds into C: it keeps the binding, and the filter is not called
// again for that GC (every later binding is kept).
//
//export goFilterBinding
func goFilterBinding(ctx C.uintptr_t, key *C.uint8_t, keyLen C.size_t, value *C.uint8_t,
	valueLen C.size_t) (kept C.bool) {
	s := cgo.Handle(ctx).Value().(*filterState)
	if s.panicked {
		return true
	}
	defer func() {
		if r := recover(); r != nil {
			s.panicked, s.panicVal = true, r
			kept = true
		}
	}()
	k := C.GoBytes(unsafe.Pointer(key), C.int(keyLen))
	v := C.GoBytes(unsafe.Pointer(value), C.int(valueLen))
	return C.bool(s.keep(k, v))
}

// runFilter calls start with the context of keep for a GC that has ended
// when start returns (a filter, a GC with wait), then frees that context;
// a panic of keep is re-raised here, on the caller's goroutine, after C
// returned.
func runFilter(keep func(key, value []byte) bool, start func(ctx C.uintptr_t) error) error {
	state := &filterState{keep: keep}
	ctx := cgo.NewHandle(state)
	err := start(C.uintptr_t(ctx))
	ctx.Delete()
	if state.panicked {
		panic(state.panicVal)
	}
	return err
}

// gcFilters keeps the contexts of a store's background GCs alive until
// the library stops using them, that is until an end of the GC is
// observed: IsGCFinished true, AwaitGC or CancelGC returned, or the store
// closed. Contexts are numbered in the order they are registered; an
// observation ends every context registered before it began (a context is
// registered once its GC started, and only one GC runs at a time, so that
// GC started before the observation and has ended when it says so).
type gcFilters struct {
	mu      sync.Mutex
	seq     uint64
	pending map[uint64]pendingFilter
	panics  []any // of the ended GCs, until AwaitGC reports them
}

type pendingFilter struct {
	ctx   cgo.Handle
	state *filterState
}

// start runs a C call starting a GC with the context of keep; the context
// stays registered if (and only if) the call says a background GC started
// (wait false, no error); otherwise the GC has ended or never started and
// it is freed at once. A panic of keep during a GC with wait is re-raised
// here.
func (g *gcFilters) start(keep func(key, value []byte) bool, wait bool,
	call func(ctx C.uintptr_t, started *C.bool) error) (bool, error) {
	state := &filterState{keep: keep}
	ctx := cgo.NewHandle(state)
	var started C.bool
	err := call(C.uintptr_t(ctx), &started)
	if err == nil && bool(started) && !wait {
		g.mu.Lock()
		if g.pending == nil {
			g.pending = map[uint64]pendingFilter{}
		}
		g.seq++
		g.pending[g.seq] = pendingFilter{ctx: ctx, state: state}
		g.mu.Unlock()
		return true, nil
	}
	ctx.Delete()
	if state.panicked {
		panic(state.panicVal)
	}
	return bool(started), err
}

// mark is taken before an observation of the end of GCs: the contexts
// registered so far.
func (g *gcFilters) mark() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.seq
}

// ended frees the contexts registered up to mark, whose GCs the
// observation that began at mark saw end, and keeps their panics.
func (g *gcFilters) ended(mark uint64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for seq, p := range g.pending {
		if seq <= mark {
			p.ctx.Delete()
			if p.state.panicked {
				g.panics = append(g.panics, p.state.panicVal)
			}
			delete(g.pending, seq)
		}
	}
}

// takePanic returns, once, the panic of a background GC filter that has
// ended, as an error (nil if none).
func (g *gcFilters) takePanic() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.panics) == 0 {
		return nil
	}
	v := g.panics[0]
	g.panics = g.panics[1:]
	return &FilterPanicError{Value: v}
}

// observe runs an observation of the end of GCs (await, cancel,
// is-finished): when it reports that the GCs started so far have ended,
// their contexts are freed.
func (g *gcFilters) observe(f func() (ended bool)) {
	m := g.mark()
	if f() {
		g.ended(m)
	}
}
