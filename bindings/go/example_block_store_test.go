package tzstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	tzstore "github.com/tzstore/tzstore/bindings/go"
)

func ExampleBlockStore() {
	dir, _ := os.MkdirTemp("", "tzstore-example")
	defer os.RemoveAll(dir)
	opts := tzstore.DefaultBlockStoreOptions()
	opts.Flags = tzstore.NoFsync
	opts.HistoryMode, opts.HistoryOffset = tzstore.HistoryRolling, 2 // keep 2 cemented chunks
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
			Contents: []byte(fmt.Sprintf("block %d", n))}
		if err := s.Store(&b); err != nil {
			panic(err)
		}
	}
	b, _ := s.Read(hash(29), 0, true)
	fmt.Println("head: level", b.Level)
	b, _ = s.Read(hash(29), 10, true) // the ancestor 10 blocks below
	fmt.Printf("ancestor: %s\n", b.Contents)
	if _, err := s.Read(hash(99), 0, true); errors.Is(err, tzstore.ErrNotFound) {
		fmt.Println("not found")
	}
	err = s.Store(&tzstore.Block{Hash: hash(50), Level: 50, Predecessor: hash(49)})
	fmt.Println("inconsistent:", errors.Is(err, tzstore.ErrInconsistent)) // err.Error() says why
	// Cement levels 0..19 (two chunks) in the background.
	if err := s.Merge(hash(29), []int32{9, 19}); err != nil {
		panic(err)
	}
	_ = s.AwaitMerge()
	st, _ := s.Stats()
	fmt.Println("cemented up to", st.CementedHighest)
	// Output:
	// head: level 29
	// ancestor: block 19
	// not found
	// inconsistent: true
	// cemented up to 19
}
