module example.com/chain

go 1.19

require github.com/tzstore/tzstore/bindings/go v0.0.0

// The binding from a checkout of tzstore beside this directory (or a
// vendored copy of its bindings/go directory).
replace github.com/tzstore/tzstore/bindings/go => ../tzstore/bindings/go
