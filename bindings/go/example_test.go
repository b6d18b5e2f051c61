package tzstore_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/tzstore/tzstore-go"
)

func Example() {
	dir, _ := os.MkdirTemp("", "tzstore-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "head")
	s, err := tzstore.OpenSingleton(path, tzstore.NoFsync)
	if err != nil {
		panic(err)
	}
	defer s.Close()
	_ = s.Write([]byte("block 42"))
	v, _ := s.Read()
	fmt.Printf("read: %s\n", v)
	_ = s.Delete()
	if _, err := s.Read(); errors.Is(err, tzstore.ErrNotFound) {
		fmt.Println("not found")
	}
	ro, _ := tzstore.OpenSingleton(path, tzstore.ReadOnly)
	defer ro.Close()
	err = ro.Write([]byte("x")) // err.Error() names the file
	fmt.Println("read-only:", errors.Is(err, tzstore.ErrReadOnly))
	// Output:
	// read: block 42
	// not found
	// read-only: true
}
