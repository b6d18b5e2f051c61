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
	h, err := openHandle(root, "kv", func(croot *C.char, p **C.tzs_kv, e cErrOut) cStatus {
		return C.tzs_kv_open(croot, C.uint32_t(flags), p, e)
	}, func(p *C.tzs_kv) { C.tzs_kv_close(p) })
	if err != nil {
		return nil, err
	}
	return &Kv{h: h}, nil
}

// cKey copies a key into C memory (free it with C.free).
func cKey(key string) (*C.char, error) {
	if strings.IndexByte(key, 0) >= 0 {
		return nil, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("key %q contains a NUL byte", key)}
	}
	return C.CString(key), nil
}

// withKey runs f on the C copy of key, which is checked before the handle
// is: a key with a NUL byte is ErrInvalidArgument even on a closed handle.
func withKey[R any](key string, f func(k *C.char) (R, error)) (R, error) {
	ck, err := cKey(key)
	if err != nil {
		var zero R
		return zero, err
	}
	defer C.free(unsafe.Pointer(ck))
	return f(ck)
}

// callKey is call for a C call that takes a key after the handle.
func callKey[T any](h *handle[T], key string, f func(p *T, k *C.char, e cErrOut) cStatus) error {
	_, err := withKey(key, func(k *C.char) (struct{}, error) {
		return struct{}{}, call(h, func(p *T, e cErrOut) cStatus { return f(p, k, e) })
	})
	return err
}

// callKeyOut is callOut for a C call that takes a key after the handle.
func callKeyOut[T, O, R any](h *handle[T], key string, f func(p *T, k *C.char, out *O, e cErrOut) cStatus,
	conv func(*O) R) (R, error) {
	return withKey(key, func(k *C.char) (R, error) {
		return callOut(h, func(p *T, out *O, e cErrOut) cStatus { return f(p, k, out, e) }, conv)
	})
}

// takeEntries copies a library-allocated entry list into Go memory and
// frees it.
func takeEntries(out **C.tzs_kv_entries) []KvEntry {
	e := *out
	defer C.tzs_kv_entries_free(e)
	n := int(C.tzs_kv_entries_len(e))
	entries := make([]KvEntry, n)
	for i := range entries {
		entries[i] = KvEntry{
			Name: C.GoString(C.tzs_kv_entries_name(e, C.size_t(i))),
			Kind: KvKind(C.tzs_kv_entries_kind(e, C.size_t(i))),
		}
	}
	return entries
}

func kvKind(k *C.tzs_kv_kind) KvKind { return KvKind(*k) }

// Exists returns what key is bound to, or ErrNotFound.
func (kv *Kv) Exists(key string) (KvKind, error) {
	return callKeyOut(kv.h, key, func(p *C.tzs_kv, k *C.char, kind *C.tzs_kv_kind, e cErrOut) cStatus {
		return C.tzs_kv_exists(p, k, kind, e)
	}, kvKind)
}

// Get returns a copy of the value at key, or ErrNotFound. Errors:
// ErrValueExpected (a dictionary), ErrDictionaryExpected (a parent is a
// value).
func (kv *Kv) Get(key string) ([]byte, error) {
	return callKeyOut(kv.h, key, func(p *C.tzs_kv, k *C.char, out *C.tzs_bytes, e cErrOut) cStatus {
		return C.tzs_kv_get(p, k, out, e)
	}, takeBytes)
}

// GetPartial returns up to length bytes of the value from offset (fewer
// past the end, none beyond it), or ErrNotFound.
func (kv *Kv) GetPartial(key string, offset, length uint64) ([]byte, error) {
	return callKeyOut(kv.h, key, func(p *C.tzs_kv, k *C.char, out *C.tzs_bytes, e cErrOut) cStatus {
		return C.tzs_kv_get_partial(p, k, C.uint64_t(offset), C.uint64_t(length), out, e)
	}, takeBytes)
}

// Size returns the size of the value at key, or ErrNotFound.
func (kv *Kv) Size(key string) (uint64, error) {
	return callKeyOut(kv.h, key, func(p *C.tzs_kv, k *C.char, n *C.uint64_t, e cErrOut) cStatus {
		return C.tzs_kv_size(p, k, n, e)
	}, func(n *C.uint64_t) uint64 { return uint64(*n) })
}

// List returns the entries of the dictionary at key ("" is the root),
// sorted by name, or ErrNotFound. ErrDictionaryExpected for a value.
func (kv *Kv) List(key string) ([]KvEntry, error) {
	return callKeyOut(kv.h, key, func(p *C.tzs_kv, k *C.char, out **C.tzs_kv_entries, e cErrOut) cStatus {
		return C.tzs_kv_list(p, k, out, e)
	}, takeEntries)
}

// LastModified returns when key (for a dictionary: its latest direct
// entry) was modified, as days and picoseconds since 1970-01-01 UTC, or
// ErrNotFound.
func (kv *Kv) LastModified(key string) (days int64, picoseconds uint64, err error) {
	var d C.int64_t
	var ps C.uint64_t
	err = callKey(kv.h, key, func(p *C.tzs_kv, k *C.char, e cErrOut) cStatus {
		return C.tzs_kv_last_modified(p, k, &d, &ps, e)
	})
	return int64(d), uint64(ps), err
}

// Digest returns the SHA-256 of a value, or of a dictionary's entries.
func (kv *Kv) Digest(key string) ([32]byte, error) {
	var d [32]byte
	err := callKey(kv.h, key, func(p *C.tzs_kv, k *C.char, e cErrOut) cStatus {
		return C.tzs_kv_digest(p, k, (*C.uint8_t)(unsafe.Pointer(&d[0])), e)
	})
	return d, err
}

// Set binds key to v, creating missing parents; durable on return. Errors:
// ErrReadOnly, ErrValueExpected (key is a dictionary), ErrDictionaryExpected
// (a parent is a value), ErrNoSpace, ErrIO.
func (kv *Kv) Set(key string, v []byte) error {
	return callKey(kv.h, key, func(p *C.tzs_kv, k *C.char, e cErrOut) cStatus {
		ptr, n := bytesArg(v)
		return C.tzs_kv_set(p, k, ptr, n, e)
	})
}

// SetPartial writes v at offset of the value at key (past the end appends;
// an unbound key is created).
func (kv *Kv) SetPartial(key string, offset uint64, v []byte) error {
	return callKey(kv.h, key, func(p *C.tzs_kv, k *C.char, e cErrOut) cStatus {
		ptr, n := bytesArg(v)
		return C.tzs_kv_set_partial(p, k, C.uint64_t(offset), ptr, n, e)
	})
}

// Remove removes a value or a whole dictionary; an unbound key is no error.
func (kv *Kv) Remove(key string) error {
	return callKey(kv.h, key, func(p *C.tzs_kv, k *C.char, e cErrOut) cStatus { return C.tzs_kv_remove(p, k, e) })
}

// Rename moves from to to (onto a dictionary: inside it). Errors:
// ErrNotFound (unbound source), ErrValueExpected, ErrKeyExists,
// ErrInvalidArgument.
func (kv *Kv) Rename(from, to string) error {
	_, err := withKey(to, func(cto *C.char) (struct{}, error) {
		return struct{}{}, callKey(kv.h, from, func(p *C.tzs_kv, k *C.char, e cErrOut) cStatus {
			return C.tzs_kv_rename(p, k, cto, e)
		})
	})
	return err
}

// Allocate binds the unbound key to size zero bytes. ErrKeyExists if bound.
func (kv *Kv) Allocate(key string, size uint64) error {
	return callKey(kv.h, key, func(p *C.tzs_kv, k *C.char, e cErrOut) cStatus {
		return C.tzs_kv_allocate(p, k, C.uint64_t(size), e)
	})
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
	return callKeyOut(b.h, key, func(p *C.tzs_kv_batch, k *C.char, kind *C.tzs_kv_kind, e cErrOut) cStatus {
		return C.tzs_kv_batch_exists(p, k, kind, e)
	}, kvKind)
}

// Get is Kv.Get in the batch's view.
func (b *KvBatch) Get(key string) ([]byte, error) {
	return callKeyOut(b.h, key, func(p *C.tzs_kv_batch, k *C.char, out *C.tzs_bytes, e cErrOut) cStatus {
		return C.tzs_kv_batch_get(p, k, out, e)
	}, takeBytes)
}

// List is Kv.List in the batch's view.
func (b *KvBatch) List(key string) ([]KvEntry, error) {
	return callKeyOut(b.h, key, func(p *C.tzs_kv_batch, k *C.char, out **C.tzs_kv_entries, e cErrOut) cStatus {
		return C.tzs_kv_batch_list(p, k, out, e)
	}, takeEntries)
}

// Set buffers key := v; nothing reaches the store before the commit.
func (b *KvBatch) Set(key string, v []byte) error {
	return callKey(b.h, key, func(p *C.tzs_kv_batch, k *C.char, e cErrOut) cStatus {
		ptr, n := bytesArg(v)
		return C.tzs_kv_batch_set(p, k, ptr, n, e)
	})
}

// Remove buffers the removal of key.
func (b *KvBatch) Remove(key string) error {
	return callKey(b.h, key, func(p *C.tzs_kv_batch, k *C.char, e cErrOut) cStatus {
		return C.tzs_kv_batch_remove(p, k, e)
	})
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
	bp, err := callOut(kv.h, func(p *C.tzs_kv, bp **C.tzs_kv_batch, e cErrOut) cStatus {
		return C.tzs_kv_batch_begin(p, bp, e)
	}, deref[*C.tzs_kv_batch])
	if err != nil {
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
