package tzstore

import (
	"runtime"
	"sync"
)

// handle owns one C handle of type T. Calls are counted, so Close waits
// for calls in progress, and calls that start once Close has begun get
// ErrClosed instead of using a freed handle. (A read-write lock would do
// the same, but a call made while another is in progress on the same
// goroutine or one it waits for, such as a GC filter reading its store,
// would then deadlock behind a pending Close instead of getting
// ErrClosed.)
type handle[T any] struct {
	mu      sync.Mutex
	changed sync.Cond // calls dropped to 0, or a close ended
	p       *T
	calls   int
	closing bool
	close   func(*T)
	what    string
}

// newHandle wraps p; a finalizer closes it if the user forgets to. Calls
// go through use, which keeps the handle alive until C returns.
func newHandle[T any](p *T, what string, closeFn func(*T)) *handle[T] {
	h := &handle[T]{p: p, close: closeFn, what: what}
	h.changed.L = &h.mu
	runtime.SetFinalizer(h, (*handle[T]).release)
	return h
}

// use runs f on the live C pointer, counted as a call in progress so that
// Close waits for it; on a closed or closing handle it returns closedError
// without calling f.
func (h *handle[T]) use(f func(p *T) error) error {
	h.mu.Lock()
	if h.p == nil || h.closing {
		h.mu.Unlock()
		return closedError(h.what)
	}
	p := h.p
	h.calls++
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.calls--
		if h.calls == 0 {
			h.changed.Broadcast()
		}
		h.mu.Unlock()
	}()
	err := f(p)
	// The finalizer sits on h: it must not close the pointer before C
	// returns.
	runtime.KeepAlive(h)
	return err
}

// Close closes the C handle once, after calls in progress; later calls
// are no-ops.
func (h *handle[T]) Close() {
	h.release()
	runtime.SetFinalizer(h, nil)
}

// take ends h like Close but hands the C handle over instead of closing
// it (e.g. to commit a batch, which frees it); nil if already closed.
func (h *handle[T]) take() *T {
	p := h.detach()
	if p != nil {
		h.finishClosing()
	}
	runtime.SetFinalizer(h, nil)
	return p
}

func (h *handle[T]) release() {
	if p := h.detach(); p != nil {
		h.close(p)
		h.finishClosing()
	}
}

// detach marks h closing and waits for the calls in progress, then returns
// the C pointer for the caller to close or hand over, which then calls
// finishClosing. Nil when h is already closed; a concurrent close is
// waited for first, so that a second Close returns once the handle is
// really closed.
func (h *handle[T]) detach() *T {
	h.mu.Lock()
	defer h.mu.Unlock()
	for h.closing {
		h.changed.Wait()
	}
	if h.p == nil {
		return nil
	}
	h.closing = true
	for h.calls > 0 {
		h.changed.Wait()
	}
	return h.p
}

func (h *handle[T]) finishClosing() {
	h.mu.Lock()
	h.p = nil
	h.closing = false
	h.changed.Broadcast()
	h.mu.Unlock()
}
