module github.com/tzstore/tzstore-go

go 1.19
