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

// newHandle wraps p; a finalizer closes it if the user forgets to. The
// store type holds the *handle, and calls runtime.KeepAlive(store) after
// each C call, so the handle cannot be finalized during a call.
func newHandle[T any](p *T, what string, closeFn func(*T)) *handle[T] {
	h := &handle[T]{p: p, close: closeFn, what: what}
	runtime.SetFinalizer(h, (*handle[T]).release)
	return h
}

// acquire returns the live pointer with the read lock held; the caller must
// call h.mu.RUnlock() (through done) after the C call.
func (h *handle[T]) acquire() (*T, error) {
	h.mu.RLock()
	if h.p == nil {
		h.mu.RUnlock()
		return nil, closedError(h.what)
	}
	return h.p, nil
}

func (h *handle[T]) done() { h.mu.RUnlock() }

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
