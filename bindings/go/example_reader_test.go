package tzstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	tzstore "github.com/tzstore/tzstore/bindings/go"
)

func ExampleBlockStore_ReadView() {
	dir, _ := os.MkdirTemp("", "tzstore-example")
	defer os.RemoveAll(dir)
	opts := tzstore.DefaultBlockStoreOptions()
	opts.Flags = tzstore.NoFsync
	s, err := tzstore.OpenBlockStore(filepath.Join(dir, "node"), opts)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	hash := func(n int) tzstore.Hash { return tzstore.Hash{byte(n), 0xAB} }
	for n := 0; n < 30; n++ { // a chain: genesis is its own predecessor
		pred := hash(0)
		if n > 0 {
			pred = hash(n - 1)
		}
		b := tzstore.Block{Hash: hash(n), Level: int32(n), Predecessor: pred,
			Contents: []byte(fmt.Sprintf("block %d", n)), Metadata: []byte("m")}
		if err := s.Store(&b); err != nil {
			panic(err)
		}
	}
	// One Reader per goroutine; its views borrow the store's memory.
	r, err := tzstore.NewReader()
	if err != nil {
		panic(err)
	}
	defer r.Close()
	v, err := s.ReadView(r, hash(29), 10, true) // the ancestor 10 blocks below
	if err != nil {
		panic(err)
	}
	fmt.Printf("level %d: %s, metadata %v\n", v.Level, v.Contents, v.HasMetadata)
	kept := append([]byte(nil), v.Contents...) // a copy outlives the next read
	if _, err := s.ReadView(r, hash(99), 0, true); errors.Is(err, tzstore.ErrNotFound) {
		fmt.Println("not found") // v is over: the read through r ended it
	}
	fmt.Printf("kept: %s\n", kept)
	// Output:
	// level 19: block 19, metadata true
	// not found
	// kept: block 19
}
