(* Writes the C stubs (gen_c.exe c) or the OCaml side of them (gen_c.exe
   ml, modules Blocking and Quick) for C_api.Functions. The C file also
   checks every declaration of C_api against include/tzstore.h, so that
   the build fails when they disagree:
   - each function: a pointer of the type declared in OCaml, initialised
     with the header's function; any difference in a parameter or in the
     result (size_t declared int, a pointer to another type, a missing
     const, a callback's signature) is an incompatible pointer type, an
     error under the flags of src/dune (-Werror=incompatible-pointer-types);
   - each struct: its size, and each field's offset and type. *)

let prefix = "tzstore_c"

(* A FOREIGN that only records the declarations, to check them. *)
module Record = struct
  type 'a fn = 'a Ctypes.fn
  type 'a return = 'a
  type 'a result = unit

  let ( @-> ) = Ctypes.( @-> )
  let returning = Ctypes.returning
  let declared : (string * string) list ref = ref []

  let foreign name fn =
    let check = Printf.sprintf "(*const tzs_check_%s)" name in
    declared := (name, Ctypes.string_of_fn ~name:check fn) :: !declared

  let foreign_value _ _ = ()
end

module Recorded = C_api.Functions (Record) (Record)

(* A FOREIGN that generates nothing: each pass below writes the stubs of
   one of C_api.Functions' two parameters. *)
module Ignore = struct
  type 'a fn = 'a Ctypes.fn
  type 'a return = 'a
  type 'a result = unit

  let ( @-> ) = Ctypes.( @-> )
  let returning = Ctypes.returning
  let foreign _ _ = ()
  let foreign_value _ _ = ()
end

module Blocking (F : Cstubs.FOREIGN with type 'a result = unit) = C_api.Functions (F) (Ignore)
module Quick (F : Cstubs.FOREIGN with type 'a result = unit) = C_api.Functions (Ignore) (F)

(* The stubs of each parameter, with its concurrency policy (c_api.ml). *)
let passes =
  [
    ("Blocking", Cstubs.unlocked, (module Blocking : Cstubs.BINDINGS));
    ("Quick", Cstubs.sequential, (module Quick : Cstubs.BINDINGS));
  ]

let write_checks fmt =
  let p f = Format.fprintf fmt f in
  p "@\n/* The header's prototypes against the OCaml declarations (gen_c.ml). */@\n";
  List.iter
    (fun (name, decl) -> p "static %s __attribute__((unused)) = %s;@\n" decl name)
    (List.rev !Record.declared);
  p "@\n/* The header's structs against C_api.Types. */@\n";
  List.iter
    (fun (s, size) ->
      p "_Static_assert(sizeof(%s) == %d, \"size of %s\");@\n" s (size ()) s)
    (List.rev !C_api.Types.structs);
  List.iter
    (fun (s, field, t, offset) ->
      p "_Static_assert(offsetof(%s, %s) == %d, \"offset of %s.%s\");@\n" s field (offset ()) s field;
      p "_Static_assert(__builtin_types_compatible_p(__typeof__(((%s *)0)->%s), %s), \"type of %s.%s\");@\n"
        s field t s field)
    (List.rev !C_api.Types.fields)

let () =
  let fmt = Format.std_formatter in
  (match Sys.argv with
  | [| _; "c" |] ->
      Format.fprintf fmt "#include <stddef.h>@\n#include <tzstore.h>@\n";
      List.iter
        (fun (name, concurrency, bindings) ->
          Cstubs.write_c ~concurrency fmt ~prefix:(prefix ^ "_" ^ name) bindings)
        passes;
      write_checks fmt
  | [| _; "ml" |] ->
      List.iter
        (fun (name, concurrency, bindings) ->
          Format.fprintf fmt "module %s = struct@\n" name;
          Cstubs.write_ml ~concurrency fmt ~prefix:(prefix ^ "_" ^ name) bindings;
          Format.fprintf fmt "@\nend@\n")
        passes
  | _ ->
      prerr_endline "usage: gen_c.exe (c | ml)";
      exit 2);
  Format.pp_print_flush fmt ()
