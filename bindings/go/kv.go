package tzstore

// #include <stdlib.h>
// #include "tzstore.h"
import "C"

import (
	"errors"
	"fmt"
	"math/rand"
	"runtime"
	"strings"
	"time"
	"unsafe"
)

// KvKind is what a kv key is bound to.
type KvKind uint32

// The kinds of kv entries (TZS_KV_*).
const (
	KvValue      KvKind = C.TZS_KV_VALUE
	KvDictionary KvKind = C.TZS_KV_DICTIONARY
)

// KvEntry is an entry of a kv dictionary.
type KvEntry struct {
	Name string
	Kind KvKind
}

// DefaultBatchRetries is the number of reruns Kv.Batch allows after
// conflicts, as mirage-kv-unix.
const DefaultBatchRetries = 13

// Kv is a key/value store over a directory (tzs_kv, as mirage-kv-unix):
// values are files, dictionaries directories. Keys are "/"-separated
// segments ("a/b/c", a leading "/" optional, "" the root); a segment is 1
// to 255 bytes of UTF-8 without "/" or NUL, not "." or "..", not starting
// with ".tzs" (else ErrInvalidArgument). Several handles, and processes,
// may share a root.
type Kv struct {
	h *handle[C.tzs_kv]
}

// OpenKv serves the existing directory root. Flags: ReadOnly, NoFsync.
// Errors: ErrNotFound (no such directory), ErrInvalidArgument (not a
// directory), ErrCorrupted (malformed journal), ErrIO.
func OpenKv(root string, flags Flags) (*Kv, error) {
	croot, err := cPath(root)
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(croot))
	var p *C.tzs_kv
	var e *C.tzs_error
	if err := check(C.tzs_kv_open(croot, C.uint32_t(flags), &p, &e), e); err != nil {
		return nil, err
	}
	closeFn := func(p *C.tzs_kv) { C.tzs_kv_close(p) }
	return &Kv{h: newHandle(p, "kv "+root, closeFn)}, nil
}

// cKey copies a key into C memory (free it with C.free).
func cKey(key string) (*C.char, error) {
	if strings.IndexByte(key, 0) >= 0 {
		return nil, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("key %q contains a NUL byte", key)}
	}
	return C.CString(key), nil
}

// withKey runs f on the live handle p and the C copy of key.
func withKey[T any](h *handle[T], key string, f func(p *T, k *C.char) error) error {
	ck, err := cKey(key)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(ck))
	p, err := h.acquire()
	if err != nil {
		return err
	}
	defer h.done()
	return f(p, ck)
}

func takeEntries(e *C.tzs_kv_entries) []KvEntry {
	defer C.tzs_kv_entries_free(e)
	n := int(C.tzs_kv_entries_len(e))
	out := make([]KvEntry, n)
	for i := range out {
		out[i] = KvEntry{
			Name: C.GoString(C.tzs_kv_entries_name(e, C.size_t(i))),
			Kind: KvKind(C.tzs_kv_entries_kind(e, C.size_t(i))),
		}
	}
	return out
}

// Exists returns what key is bound to, or ErrNotFound.
func (kv *Kv) Exists(key string) (KvKind, error) {
	var kind C.tzs_kv_kind
	err := withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		var e *C.tzs_error
		return check(C.tzs_kv_exists(p, k, &kind, &e), e)
	})
	runtime.KeepAlive(kv)
	return KvKind(kind), err
}

// Get returns a copy of the value at key, or ErrNotFound. Errors:
// ErrValueExpected (a dictionary), ErrDictionaryExpected (a parent is a
// value).
func (kv *Kv) Get(key string) ([]byte, error) {
	var v []byte
	err := withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		var out C.tzs_bytes
		var e *C.tzs_error
		if err := check(C.tzs_kv_get(p, k, &out, &e), e); err != nil {
			return err
		}
		v = takeBytes(&out)
		return nil
	})
	runtime.KeepAlive(kv)
	return v, err
}

// GetPartial returns up to length bytes of the value from offset (fewer
// past the end, none beyond it), or ErrNotFound.
func (kv *Kv) GetPartial(key string, offset, length uint64) ([]byte, error) {
	var v []byte
	err := withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		var out C.tzs_bytes
		var e *C.tzs_error
		if err := check(C.tzs_kv_get_partial(p, k, C.uint64_t(offset), C.uint64_t(length), &out, &e), e); err != nil {
			return err
		}
		v = takeBytes(&out)
		return nil
	})
	runtime.KeepAlive(kv)
	return v, err
}

// Size returns the size of the value at key, or ErrNotFound.
func (kv *Kv) Size(key string) (uint64, error) {
	var n C.uint64_t
	err := withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		var e *C.tzs_error
		return check(C.tzs_kv_size(p, k, &n, &e), e)
	})
	runtime.KeepAlive(kv)
	return uint64(n), err
}

// List returns the entries of the dictionary at key ("" is the root),
// sorted by name, or ErrNotFound. ErrDictionaryExpected for a value.
func (kv *Kv) List(key string) ([]KvEntry, error) {
	var out []KvEntry
	err := withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		var ents *C.tzs_kv_entries
		var e *C.tzs_error
		if err := check(C.tzs_kv_list(p, k, &ents, &e), e); err != nil {
			return err
		}
		out = takeEntries(ents)
		return nil
	})
	runtime.KeepAlive(kv)
	return out, err
}

// LastModified returns when key (for a dictionary: its latest direct
// entry) was modified, as days and picoseconds since 1970-01-01 UTC, or
// ErrNotFound.
func (kv *Kv) LastModified(key string) (days int64, picoseconds uint64, err error) {
	var d C.int64_t
	var ps C.uint64_t
	err = withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		var e *C.tzs_error
		return check(C.tzs_kv_last_modified(p, k, &d, &ps, &e), e)
	})
	runtime.KeepAlive(kv)
	return int64(d), uint64(ps), err
}

// Digest returns the SHA-256 of a value, or of a dictionary's entries.
func (kv *Kv) Digest(key string) ([32]byte, error) {
	var d [32]byte
	err := withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		var e *C.tzs_error
		return check(C.tzs_kv_digest(p, k, (*C.uint8_t)(unsafe.Pointer(&d[0])), &e), e)
	})
	runtime.KeepAlive(kv)
	return d, err
}

// Set binds key to v, creating missing parents; durable on return. Errors:
// ErrReadOnly, ErrValueExpected (key is a dictionary), ErrDictionaryExpected
// (a parent is a value), ErrNoSpace, ErrIO.
func (kv *Kv) Set(key string, v []byte) error {
	err := withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		ptr, n := bytesArg(v)
		var e *C.tzs_error
		return check(C.tzs_kv_set(p, k, ptr, n, &e), e)
	})
	runtime.KeepAlive(kv)
	runtime.KeepAlive(v)
	return err
}

// SetPartial writes v at offset of the value at key (past the end appends;
// an unbound key is created).
func (kv *Kv) SetPartial(key string, offset uint64, v []byte) error {
	err := withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		ptr, n := bytesArg(v)
		var e *C.tzs_error
		return check(C.tzs_kv_set_partial(p, k, C.uint64_t(offset), ptr, n, &e), e)
	})
	runtime.KeepAlive(kv)
	runtime.KeepAlive(v)
	return err
}

// Remove removes a value or a whole dictionary; an unbound key is no error.
func (kv *Kv) Remove(key string) error {
	err := withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		var e *C.tzs_error
		return check(C.tzs_kv_remove(p, k, &e), e)
	})
	runtime.KeepAlive(kv)
	return err
}

// Rename moves from to to (onto a dictionary: inside it). Errors:
// ErrNotFound (unbound source), ErrValueExpected, ErrKeyExists,
// ErrInvalidArgument.
func (kv *Kv) Rename(from, to string) error {
	cto, err := cKey(to)
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cto))
	err = withKey(kv.h, from, func(p *C.tzs_kv, k *C.char) error {
		var e *C.tzs_error
		return check(C.tzs_kv_rename(p, k, cto, &e), e)
	})
	runtime.KeepAlive(kv)
	return err
}

// Allocate binds the unbound key to size zero bytes. ErrKeyExists if bound.
func (kv *Kv) Allocate(key string, size uint64) error {
	err := withKey(kv.h, key, func(p *C.tzs_kv, k *C.char) error {
		var e *C.tzs_error
		return check(C.tzs_kv_allocate(p, k, C.uint64_t(size), &e), e)
	})
	runtime.KeepAlive(kv)
	return err
}

// Close closes the handle after calls in progress return. Closing twice is
// a no-op; calls after Close return ErrClosed.
func (kv *Kv) Close() error {
	kv.h.Close()
	return nil
}

// KvBatch is a batch, as given to the function passed to Kv.Batch: reads
// see the batch's own writes over the store and are recorded, so that the
// commit conflicts if someone else changed those keys meanwhile. Valid only
// during that function (later calls return ErrClosed).
type KvBatch struct {
	h *handle[C.tzs_kv_batch]
}

// Exists is Kv.Exists in the batch's view.
func (b *KvBatch) Exists(key string) (KvKind, error) {
	var kind C.tzs_kv_kind
	err := withKey(b.h, key, func(p *C.tzs_kv_batch, k *C.char) error {
		var e *C.tzs_error
		return check(C.tzs_kv_batch_exists(p, k, &kind, &e), e)
	})
	runtime.KeepAlive(b)
	return KvKind(kind), err
}

// Get is Kv.Get in the batch's view.
func (b *KvBatch) Get(key string) ([]byte, error) {
	var v []byte
	err := withKey(b.h, key, func(p *C.tzs_kv_batch, k *C.char) error {
		var out C.tzs_bytes
		var e *C.tzs_error
		if err := check(C.tzs_kv_batch_get(p, k, &out, &e), e); err != nil {
			return err
		}
		v = takeBytes(&out)
		return nil
	})
	runtime.KeepAlive(b)
	return v, err
}

// List is Kv.List in the batch's view.
func (b *KvBatch) List(key string) ([]KvEntry, error) {
	var out []KvEntry
	err := withKey(b.h, key, func(p *C.tzs_kv_batch, k *C.char) error {
		var ents *C.tzs_kv_entries
		var e *C.tzs_error
		if err := check(C.tzs_kv_batch_list(p, k, &ents, &e), e); err != nil {
			return err
		}
		out = takeEntries(ents)
		return nil
	})
	runtime.KeepAlive(b)
	return out, err
}

// Set buffers key := v; nothing reaches the store before the commit.
func (b *KvBatch) Set(key string, v []byte) error {
	err := withKey(b.h, key, func(p *C.tzs_kv_batch, k *C.char) error {
		ptr, n := bytesArg(v)
		var e *C.tzs_error
		return check(C.tzs_kv_batch_set(p, k, ptr, n, &e), e)
	})
	runtime.KeepAlive(b)
	runtime.KeepAlive(v)
	return err
}

// Remove buffers the removal of key.
func (b *KvBatch) Remove(key string) error {
	err := withKey(b.h, key, func(p *C.tzs_kv_batch, k *C.char) error {
		var e *C.tzs_error
		return check(C.tzs_kv_batch_remove(p, k, &e), e)
	})
	runtime.KeepAlive(b)
	return err
}

// Batch runs fn in a fresh batch and, when it returns nil, commits its
// writes atomically and durably. When the commit conflicts, or fn returns
// an error matching ErrConflict, fn runs again in a new batch, up to
// retries more times (retries < 0 means DefaultBatchRetries); then the
// error is ErrTooManyRetries (mirage-kv's batch). Any other error from fn
// discards the batch and is returned; so does a panic, which propagates.
// Errors also: ErrReadOnly.
func (kv *Kv) Batch(fn func(*KvBatch) error, retries int) error {
	if retries < 0 {
		retries = DefaultBatchRetries
	}
	for attempt := 0; ; attempt++ {
		b, err := kv.beginBatch()
		if err != nil {
			return err
		}
		err = runBatch(b, fn)
		if err == nil {
			err = b.commit()
		}
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if attempt >= retries {
			return &Error{Status: StatusTooManyRetries, Message: fmt.Sprintf("kv batch conflicted %d times", attempt+1)}
		}
		conflictBackoff(attempt + 1)
	}
}

// conflictBackoff waits before retrying a conflicted batch: a yield for the
// first retries, then a random sleep growing with each (up to ~3 ms), so
// batches contending for the same keys stop colliding in lockstep.
func conflictBackoff(attempt int) {
	if attempt < 3 {
		runtime.Gosched()
		return
	}
	shift := attempt
	if shift > 6 {
		shift = 6
	}
	capUs := int64(50) << shift
	time.Sleep(time.Duration(1+rand.Int63n(capUs)) * time.Microsecond)
}

// runBatch runs fn, discarding the batch unless fn returns nil.
func runBatch(b *KvBatch, fn func(*KvBatch) error) (err error) {
	ok := false
	defer func() {
		if !ok {
			b.h.Close()
		}
	}()
	err = fn(b)
	ok = err == nil
	return err
}

func (kv *Kv) beginBatch() (*KvBatch, error) {
	p, err := kv.h.acquire()
	if err != nil {
		return nil, err
	}
	defer kv.h.done()
	var bp *C.tzs_kv_batch
	var e *C.tzs_error
	st := C.tzs_kv_batch_begin(p, &bp, &e)
	runtime.KeepAlive(kv)
	if err := check(st, e); err != nil {
		return nil, err
	}
	abort := func(p *C.tzs_kv_batch) { C.tzs_kv_batch_abort(p) }
	return &KvBatch{h: newHandle(bp, "kv batch (finished)", abort)}, nil
}

// commit commits and frees the batch.
func (b *KvBatch) commit() error {
	p := b.h.take()
	if p == nil {
		return closedError("kv batch")
	}
	var e *C.tzs_error
	return check(C.tzs_kv_batch_commit(p, &e), e)
}
