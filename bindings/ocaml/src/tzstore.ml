(** OCaml binding of the tzstore C library (ctypes, generated C stubs). One module per
    store; every call returns a [result] with {!Error.t}. *)

module Error = Error
module Singleton = Singleton
module Index = Index
module Block = Block
module Floating = Floating
module Kv = Kv
module Block_store = Block_store
module Indexed_file = Indexed_file
module Cemented = Cemented
module Reader = Reader

let version () : string = C.version ()
