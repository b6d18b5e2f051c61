module github.com/tzstore/tzstore/bindings/go

go 1.19
