package tzstore

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
)

func cemChain(from, to int) []*Block {
	out := []*Block{}
	for i := from; i <= to; i++ {
		out = append(out, blockOf(i))
	}
	return out
}

func wantChunks(t *testing.T, what string, got []Chunk, err error, want ...Chunk) {
	t.Helper()
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("%s = %v, %v; want %v", what, got, err, want)
	}
}

func TestCementedRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cemented")
	c, err := OpenCemented(dir, NoFsync, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.LowestLevel(); err != ErrNotFound {
		t.Fatalf("lowest level of an empty store: %v", err)
	}
	if _, err := c.HighestLevel(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("highest level of an empty store: %v", err)
	}
	for _, r := range [][2]int{{0, 19}, {20, 39}} {
		if err := c.Cement(cemChain(r[0], r[1]), true, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Cement(cemChain(40, 59), false, true); err != nil {
		t.Fatal(err)
	}
	if l, err := c.LowestLevel(); l != 0 || err != nil {
		t.Fatalf("lowest = %d, %v", l, err)
	}
	if l, err := c.HighestLevel(); l != 59 || err != nil {
		t.Fatalf("highest = %d, %v", l, err)
	}
	chunks, err := c.Chunks()
	wantChunks(t, "chunks", chunks, err, Chunk{0, 19}, Chunk{20, 39}, Chunk{40, 59})
	chunks, err = c.MetadataChunks()
	wantChunks(t, "metadata chunks", chunks, err, Chunk{0, 19}, Chunk{20, 39})
	if ch, err := c.FindChunk(25); ch != (Chunk{20, 39}) || err != nil {
		t.Fatalf("find_chunk = %v, %v", ch, err)
	}
	if _, err := c.FindChunk(60); !errors.Is(err, ErrNotFound) {
		t.Fatalf("find_chunk of a missing level: %v", err)
	}
	for i := 0; i < 40; i++ {
		b, err := c.ReadByLevel(int32(i), true)
		bsWantBlock(t, fmt.Sprintf("read_by_level %d", i), b, err, blockOf(i))
		b, err = c.ReadByHash(hashOf(i), true)
		bsWantBlock(t, "read_by_hash", b, err, blockOf(i))
		if l, err := c.LevelOf(hashOf(i)); l != int32(i) || err != nil {
			t.Fatalf("level_of %d = %d, %v", i, l, err)
		}
		if h, err := c.HashOf(int32(i)); h != hashOf(i) || err != nil {
			t.Fatalf("hash_of %d = %x, %v", i, h, err)
		}
	}
	b, err := c.ReadByLevel(45, true)
	bsWantBlock(t, "cemented without metadata", b, err, bsBareBlock(45))
	b, err = c.ReadByLevel(10, false)
	bsWantBlock(t, "read without metadata", b, err, bsBareBlock(10))
	m, err := c.ReadMetadata(10)
	wantIFValue(t, "read_metadata", m, err, blockOf(10).Metadata)
	if _, err := c.ReadMetadata(9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("metadata of a block without: %v", err)
	}
	if _, err := c.ReadByLevel(60, false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read of a missing level: %v", err)
	}
	if _, err := c.ReadByHash(hashOf(60), false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read of a missing hash: %v", err)
	}
	if _, err := c.LevelOf(hashOf(60)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("level_of a missing hash: %v", err)
	}
	if _, err := c.HashOf(60); !errors.Is(err, ErrNotFound) {
		t.Fatalf("hash_of a missing level: %v", err)
	}

	var e *Error
	if err := c.Cement(cemChain(61, 70), true, true); !errors.Is(err, ErrInconsistent) ||
		!errors.As(err, &e) || e.Message == "" {
		t.Fatalf("cement after a gap: %v", err)
	}
	if err := c.Cement(nil, true, true); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("cement of no block: %v", err)
	}
	if _, err := OpenCemented(dir, 0, 0); !errors.Is(err, ErrLocked) {
		t.Fatalf("second read-write open: %v", err)
	}
	if _, err := OpenCemented(dir+"-missing", ReadOnly, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read-only open of a missing store: %v", err)
	}
	if err := c.SetZstdLevel(99); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("zstd level 99: %v", err)
	}
	if err := c.SetZstdLevel(5); err != nil {
		t.Fatal(err)
	}
	genesis := hashOf(0)
	if err := c.CheckConsistency(&genesis); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckConsistency(nil); err != nil {
		t.Fatal(err)
	}

	next := 20
	if err := c.ForEach(Chunk{20, 39}, true, func(b *Block) error {
		if !sameBlock(b, blockOf(next)) {
			return fmt.Errorf("block %d differs", next)
		}
		next++
		return nil
	}); err != nil || next != 40 {
		t.Fatalf("for_each: %v, stopped at %d", err, next)
	}
	if err := c.ForEach(Chunk{20, 30}, true, func(*Block) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("for_each of a missing chunk: %v", err)
	}
	stop := errors.New("stop")
	if err := c.ForEach(Chunk{0, 19}, false, func(*Block) error { return stop }); err != stop {
		t.Fatalf("for_each stopped by fn: %v", err)
	}

	ro, err := OpenCemented(dir, ReadOnly, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if err := ro.Cement(cemChain(60, 69), true, true); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("read-only cement: %v", err)
	}
	if err := c.Cement(cemChain(60, 79), true, true); err != nil {
		t.Fatal(err)
	}
	if err := ro.Sync(); err != nil {
		t.Fatal(err)
	}
	b, err = ro.ReadByLevel(70, true)
	bsWantBlock(t, "read-only read after sync", b, err, blockOf(70))

	if err := c.GC(HistoryArchive, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.GC(HistoryFull, 2); err != nil {
		t.Fatal(err)
	}
	chunks, err = c.MetadataChunks()
	wantChunks(t, "metadata chunks after full gc", chunks, err, Chunk{60, 79})
	if _, err := c.ReadMetadata(10); !errors.Is(err, ErrNotFound) {
		t.Fatalf("metadata after full gc: %v", err)
	}
	if err := c.GC(HistoryRolling, 2); err != nil {
		t.Fatal(err)
	}
	chunks, err = c.Chunks()
	wantChunks(t, "chunks after rolling gc", chunks, err, Chunk{40, 59}, Chunk{60, 79})
	if _, err := c.ReadByHash(hashOf(10), false); !errors.Is(err, ErrNotFound) {
		t.Fatalf("read of a dropped block: %v", err)
	}
	if err := c.CheckConsistency(nil); err != nil {
		t.Fatal(err)
	}
	if err := c.GC(HistoryMode(9), 1); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("gc with an unknown mode: %v", err)
	}

	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ReadByLevel(70, false); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	c2, err := OpenCemented(dir, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	b, err = c2.ReadByLevel(79, true)
	bsWantBlock(t, "read after reopen", b, err, blockOf(79))
}
