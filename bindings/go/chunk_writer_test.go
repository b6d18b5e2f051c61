package tzstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sort"
	"testing"
	"time"
)

func openCementedT(t *testing.T, dir string) *Cemented {
	t.Helper()
	c, err := OpenCemented(dir, NoFsync, 100)
	if err != nil {
		t.Fatalf("open %s: %v", dir, err)
	}
	return c
}

func beginChunkT(t *testing.T, c *Cemented, start, end int32, writeMetadata bool) *ChunkWriter {
	t.Helper()
	w, err := c.BeginChunk(start, end, writeMetadata, true)
	if err != nil {
		t.Fatalf("begin %d..%d: %v", start, end, err)
	}
	return w
}

func pushAll(t *testing.T, w *ChunkWriter, from, to int) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := w.Push(blockOf(i)); err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
}

// dirNames lists every file under dir, relative to it.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		names = append(names, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	return names
}

// A 100-block chunk streamed block by block (even levels with a context)
// reads back like a cemented one, also after a reopen; the ended writer
// refuses further calls.
func TestChunkWriterStreamsAChunk(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cemented")
	c := openCementedT(t, dir)
	w := beginChunkT(t, c, 0, 99, true)
	for i := 0; i < 100; i++ {
		var err error
		if i%2 == 0 {
			err = w.PushWithContext(blockOf(i), ctxOf(i))
		} else {
			err = w.Push(blockOf(i))
		}
		if err != nil {
			t.Fatalf("push %d: %v", i, err)
		}
	}
	if _, err := c.ReadByLevel(0, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a block is visible before the commit: %v", err)
	}
	if ch, err := w.Commit(); ch != (Chunk{0, 99}) || err != nil {
		t.Fatalf("commit = %v, %v", ch, err)
	}
	if _, err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second commit: %v", err)
	}
	if err := w.Push(blockOf(100)); !errors.Is(err, ErrClosed) {
		t.Fatalf("push after commit: %v", err)
	}
	w.Abort() // a no-op once committed
	check := func(c *Cemented) {
		t.Helper()
		chunks, err := c.Chunks()
		wantChunks(t, "chunks", chunks, err, Chunk{0, 99})
		chunks, err = c.MetadataChunks()
		wantChunks(t, "metadata chunks", chunks, err, Chunk{0, 99})
		for i := 0; i < 100; i++ {
			b, err := c.ReadByLevel(int32(i), true)
			bsWantBlock(t, fmt.Sprintf("read_by_level %d", i), b, err, blockOf(i))
			want := Hash{}
			if i%2 == 0 {
				want = ctxOf(i)
			}
			if got, err := c.ResultingContextHash(hashOf(i)); got != want || err != nil {
				t.Fatalf("context of %d = %x, %v; want %x", i, got, err, want)
			}
		}
		if _, err := c.ResultingContextHash(hashOf(100)); err != ErrNotFound {
			t.Fatalf("context of a block not cemented: %v", err)
		}
		if err := c.CheckConsistency(nil); err != nil {
			t.Fatal(err)
		}
	}
	check(c)
	c.Close()
	c = openCementedT(t, dir)
	defer c.Close()
	check(c)
	// The next chunk must follow the highest cemented level.
	if _, err := c.BeginChunk(101, 110, true, true); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("begin after a gap: %v", err)
	}
	if _, err := c.BeginChunk(99, 110, true, true); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("begin over a cemented chunk: %v", err)
	}
}

// Abort leaves no chunk and no file, releases the write lock, and is
// idempotent.
func TestChunkWriterAbortLeavesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cemented")
	c := openCementedT(t, dir)
	defer c.Close()
	before := dirNames(t, dir)
	w := beginChunkT(t, c, 0, 49, true)
	pushAll(t, w, 0, 29)
	w.Abort()
	w.Abort()
	if _, err := w.Commit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after abort: %v", err)
	}
	if after := dirNames(t, dir); !reflect.DeepEqual(after, before) {
		t.Fatalf("files after abort %v; before %v", after, before)
	}
	if chunks, err := c.Chunks(); len(chunks) != 0 || err != nil {
		t.Fatalf("chunks after abort = %v, %v", chunks, err)
	}
	if _, err := c.HighestLevel(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("highest level after abort: %v", err)
	}
	if _, err := c.ReadByHash(hashOf(3), false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read of an aborted block: %v", err)
	}
	if err := c.Cement(cemChain(0, 49), true, true); err != nil {
		t.Fatalf("cement after abort: %v", err)
	}
}

// A block out of order fails its push and then the commit; nothing is
// visible and the store takes the chunk again.
func TestChunkWriterWrongBlock(t *testing.T) {
	c := openCementedT(t, filepath.Join(t.TempDir(), "cemented"))
	defer c.Close()
	w := beginChunkT(t, c, 0, 9, true)
	pushAll(t, w, 0, 4)
	if err := w.Push(blockOf(6)); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("push of a wrong level: %v", err)
	}
	// The header documents TZS_INCONSISTENT here; the library says
	// TZS_INVALID_ARGUMENT ("abandoned after an error").
	if _, err := w.Commit(); !errors.Is(err, ErrInconsistent) && !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("commit after a failed push: %v", err)
	}
	if chunks, err := c.Chunks(); len(chunks) != 0 || err != nil {
		t.Fatalf("chunks after a failed commit = %v, %v", chunks, err)
	}
	// Too few blocks fail the commit too.
	w = beginChunkT(t, c, 0, 9, true)
	pushAll(t, w, 0, 8)
	if _, err := w.Commit(); !errors.Is(err, ErrInconsistent) {
		t.Fatalf("commit of a short chunk: %v", err)
	}
	w = beginChunkT(t, c, 0, 9, true)
	pushAll(t, w, 0, 9)
	if ch, err := w.Commit(); ch != (Chunk{0, 9}) || err != nil {
		t.Fatalf("commit = %v, %v", ch, err)
	}
}

// The writer keeps the store alive: it commits after Close, and the chunk
// is there on reopen.
func TestChunkWriterCommitAfterClose(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cemented")
	c := openCementedT(t, dir)
	w := beginChunkT(t, c, 0, 19, true)
	pushAll(t, w, 0, 9)
	c.Close()
	if _, err := c.BeginChunk(20, 29, true, true); !errors.Is(err, ErrClosed) {
		t.Fatalf("begin on a closed store: %v", err)
	}
	pushAll(t, w, 10, 19)
	if ch, err := w.Commit(); ch != (Chunk{0, 19}) || err != nil {
		t.Fatalf("commit after close = %v, %v", ch, err)
	}
	c = openCementedT(t, dir)
	defer c.Close()
	for i := 0; i < 20; i++ {
		b, err := c.ReadByLevel(int32(i), true)
		bsWantBlock(t, fmt.Sprintf("read_by_level %d", i), b, err, blockOf(i))
	}
}

// A writer dropped without Commit or Abort is aborted by its finalizer,
// which releases the store's write lock for the next writer.
func TestChunkWriterFinalizerAborts(t *testing.T) {
	c := openCementedT(t, filepath.Join(t.TempDir(), "cemented"))
	defer c.Close()
	func() {
		w := beginChunkT(t, c, 0, 9, true)
		pushAll(t, w, 0, 3)
	}()
	done := make(chan error, 1)
	go func() {
		w, err := c.BeginChunk(0, 9, true, true)
		if err == nil {
			for i := 0; i <= 9 && err == nil; i++ {
				err = w.Push(blockOf(i))
			}
			if err == nil {
				_, err = w.Commit()
			}
		}
		done <- err
	}()
	deadline := time.After(20 * time.Second)
	for {
		runtime.GC()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			if chunks, err := c.Chunks(); !reflect.DeepEqual(chunks, []Chunk{{0, 9}}) || err != nil {
				t.Fatalf("chunks = %v, %v", chunks, err)
			}
			return
		case <-deadline:
			t.Fatal("the forgotten writer still holds the write lock")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// CementMetadata gives a chunk cemented without metadata its metadata;
// a second call, an empty list or a block not cemented fail.
func TestCementMetadata(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cemented")
	c := openCementedT(t, dir)
	if err := c.Cement(cemChain(0, 19), false, true); err != nil {
		t.Fatal(err)
	}
	w := beginChunkT(t, c, 20, 39, false)
	pushAll(t, w, 20, 39)
	if _, err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if chunks, err := c.MetadataChunks(); len(chunks) != 0 || err != nil {
		t.Fatalf("metadata chunks before = %v, %v", chunks, err)
	}
	if m, err := c.ReadMetadata(10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("metadata before = %q, %v", m, err)
	}
	if ch, err := c.CementMetadata(cemChain(0, 19)); ch != (Chunk{0, 19}) || err != nil {
		t.Fatalf("cement_metadata = %v, %v", ch, err)
	}
	if ch, err := c.CementMetadata(cemChain(20, 39)); ch != (Chunk{20, 39}) || err != nil {
		t.Fatalf("cement_metadata of the streamed chunk = %v, %v", ch, err)
	}
	check := func(c *Cemented) {
		t.Helper()
		chunks, err := c.MetadataChunks()
		wantChunks(t, "metadata chunks after", chunks, err, Chunk{0, 19}, Chunk{20, 39})
		for i := 0; i < 40; i++ {
			b, err := c.ReadByLevel(int32(i), true)
			bsWantBlock(t, fmt.Sprintf("read_by_level %d", i), b, err, blockOf(i))
		}
		m, err := c.ReadMetadata(10)
		wantIFValue(t, "read_metadata", m, err, blockOf(10).Metadata)
	}
	check(c)
	if _, err := c.CementMetadata(cemChain(0, 19)); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("cement_metadata twice: %v", err)
	}
	if _, err := c.CementMetadata(nil); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("cement_metadata of no block: %v", err)
	}
	if _, err := c.CementMetadata(cemChain(40, 45)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cement_metadata of blocks not cemented: %v", err)
	}
	c.Close()
	c = openCementedT(t, dir)
	defer c.Close()
	check(c)
}
