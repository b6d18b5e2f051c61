(* The C API, called through the generated stubs. *)

include C_api.Types
include C_api.Functions (C_generated.Blocking) (C_generated.Quick)
