// Stores a small chain in a block store and reads it back.
// Build: go build (see go.mod beside it). Run: ./chain DIR
package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	tzstore "github.com/tzstore/tzstore/bindings/go"
)

// hash returns block n's hash: 32 bytes of value n + 1.
func hash(n int) (h tzstore.Hash) {
	copy(h[:], bytes.Repeat([]byte{byte(n + 1)}, len(h)))
	return h
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintf(os.Stderr, "usage: %s DIR\n", os.Args[0])
		os.Exit(2)
	}
	fmt.Println("tzstore", tzstore.Version())
	// durable, full history
	store, err := tzstore.OpenBlockStore(filepath.Join(os.Args[1], "blocks"), tzstore.DefaultBlockStoreOptions())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer store.Close()
	for n := 0; n <= 3; n++ { // genesis (its own predecessor) and three blocks
		pred := hash(0)
		if n > 0 {
			pred = hash(n - 1)
		}
		b := tzstore.Block{Hash: hash(n), Level: int32(n), Predecessor: pred, Contents: []byte(fmt.Sprintf("block %d", n))}
		if err := store.Store(&b); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	fmt.Println("stored levels 0..3")
	for _, distance := range []uint32{0, 2} {
		b, err := store.Read(hash(3), distance, false)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("%d below the head: level %d, %q\n", distance, b.Level, b.Contents)
	}
	if _, err := store.Read(tzstore.Hash{0x99}, 0, false); errors.Is(err, tzstore.ErrNotFound) {
		fmt.Println("unknown hash: not found")
	}
}
