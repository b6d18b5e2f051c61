package tzstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	tzstore "github.com/tzstore/tzstore/bindings/go"
)

func Example() {
	dir, _ := os.MkdirTemp("", "tzstore-example")
	defer os.RemoveAll(dir)
	// 4-byte keys, 8-byte values.
	ix, err := tzstore.OpenIndex(filepath.Join(dir, "index"), 4, 8, tzstore.NoFsync, 0)
	if err != nil {
		panic(err)
	}
	defer ix.Close()
	_ = ix.Add([]byte("key1"), []byte("value--1"), true)
	v, _ := ix.Find([]byte("key1"))
	fmt.Printf("index: %s\n", v)
	if _, err := ix.Find([]byte("nope")); errors.Is(err, tzstore.ErrNotFound) {
		fmt.Println("not found")
	}
	err = ix.Add([]byte("too long key"), []byte("value--2"), true) // err.Error() says why
	fmt.Println("invalid argument:", errors.Is(err, tzstore.ErrInvalidArgument))

	f, err := tzstore.OpenFloating(filepath.Join(dir, "blocks"), tzstore.FloatingRW, tzstore.NoFsync)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	genesis := &tzstore.Block{Hash: tzstore.Hash{1}, Predecessor: tzstore.Hash{1}, Contents: []byte("g")}
	b1 := &tzstore.Block{Hash: tzstore.Hash{2}, Level: 1, Predecessor: genesis.Hash,
		Contents: []byte("b1"), Metadata: []byte("m")}
	_ = f.Append(genesis, nil, true)
	_ = f.Append(b1, []tzstore.Hash{genesis.Hash}, true) // predecessors: the 2^i-th ancestors
	b, _ := f.ReadBlock(b1.Hash)
	fmt.Printf("block level %d: %s\n", b.Level, b.Contents)
	if _, err := f.ReadBlock(tzstore.Hash{9}); errors.Is(err, tzstore.ErrNotFound) {
		fmt.Println("block not found")
	}
	// Output:
	// index: value--1
	// not found
	// invalid argument: true
	// block level 1: b1
	// block not found
}
