package tzstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	tzstore "github.com/tzstore/tzstore/bindings/go"
)

func ExampleIndexedFile_ReadView() {
	dir, _ := os.MkdirTemp("", "tzstore-example")
	defer os.RemoveAll(dir)
	f, err := tzstore.OpenIndexedFile(filepath.Join(dir, "values"), 4, 2, tzstore.NoFsync, 0)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	if err := f.Append([]byte("key1"), []byte("h1"), []byte("first value"), false); err != nil {
		panic(err)
	}
	// One Reader per goroutine serves block and value reads alike.
	r, err := tzstore.NewReader()
	if err != nil {
		panic(err)
	}
	defer r.Close()
	v, err := f.ReadView(r, []byte("key1"))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s (header %s)\n", v.Value, v.Header)
	kept := v.Copy() // a copy outlives the next read
	if _, err := f.ReadView(r, []byte("key2")); errors.Is(err, tzstore.ErrNotFound) {
		fmt.Println("not found") // v is over: the read through r ended it
	}
	fmt.Printf("kept: %s\n", kept.Value)
	// Output:
	// first value (header h1)
	// not found
	// kept: first value
}
