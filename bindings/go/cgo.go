// Package tzstore is the Go binding of the tzstore C library (cgo).
//
// By default it links against the repository's target/release/libtzstore.so
// (built by `cargo build --release`) with an rpath to it. To use an
// installed copy instead, add its flags, e.g.
// CGO_CFLAGS="$(pkg-config --cflags tzstore)" CGO_LDFLAGS="$(pkg-config --libs tzstore)".
//
// Every handle type is safe for concurrent use by several goroutines,
// Close included; Close must still be called (a finalizer closes forgotten
// handles, but finalizers may never run). C never keeps a Go pointer: inputs
// are copied by the library during the call, outputs are copied into Go
// memory and freed before the method returns.
package tzstore

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: -L${SRCDIR}/../../target/release -ltzstore -Wl,-rpath,${SRCDIR}/../../target/release
#include "tzstore.h"
*/
import "C"
