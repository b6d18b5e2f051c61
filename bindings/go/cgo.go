// Package tzstore is the Go binding of the tzstore C library (cgo).
//
// Module path github.com/tzstore/tzstore/bindings/go (the directory
// bindings/go of the tzstore repository); import it as
//
//	import tzstore "github.com/tzstore/tzstore/bindings/go"
//
// It compiles and links against an installed libtzstore through pkg-config
// (`scripts/install.sh PREFIX`, then PKG_CONFIG_PATH=PREFIX/lib/pkgconfig
// unless PREFIX is /usr or /usr/local), so binaries record
// libtzstore.so.0 and find it the way the dynamic loader finds any library:
// the system paths, LD_LIBRARY_PATH, or an rpath given with
// CGO_LDFLAGS=-Wl,-rpath,PREFIX/lib. Nothing points into a source tree.
//
// Every handle type is safe for concurrent use by several goroutines,
// Close included; Close must still be called (a finalizer closes forgotten
// handles, but finalizers may never run). C never keeps a Go pointer: inputs
// are copied by the library during the call, outputs are copied into Go
// memory and freed before the method returns — except the borrowed reads
// (ReadView and its kin), whose BlockView and ValueView slices point into
// memory a Reader lends until its next read, Release or Close; a Reader is
// meant for one goroutine at a time (see Reader).
package tzstore

/*
#cgo pkg-config: tzstore
#include "tzstore.h"
*/
import "C"
