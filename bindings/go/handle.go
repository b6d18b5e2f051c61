package tzstore

import (
	"runtime"
	"sync"
)

// handle owns one C handle of type T. Calls hold a read lock, so Close
// (write lock) waits for calls in progress and later calls get ErrClosed
// instead of using a freed handle.
type handle[T any] struct {
	mu    sync.RWMutex
	p     *T
	close func(*T)
	what  string
}

// newHandle wraps p; a finalizer closes it if the user forgets to. Calls
// go through use, which keeps the handle alive until C returns.
func newHandle[T any](p *T, what string, closeFn func(*T)) *handle[T] {
	h := &handle[T]{p: p, close: closeFn, what: what}
	runtime.SetFinalizer(h, (*handle[T]).release)
	return h
}

// use runs f on the live C pointer with the read lock held, so Close waits
// for it; on a closed handle it returns closedError without calling f.
func (h *handle[T]) use(f func(p *T) error) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.p == nil {
		return closedError(h.what)
	}
	err := f(h.p)
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
	h.mu.Lock()
	p := h.p
	h.p = nil
	h.mu.Unlock()
	runtime.SetFinalizer(h, nil)
	return p
}

func (h *handle[T]) release() {
	h.mu.Lock()
	p := h.p
	h.p = nil
	h.mu.Unlock()
	if p != nil {
		h.close(p)
	}
}
